"""What a plugin author meets with a one-file plugin (#17): testing it uninstalled,
a generator without a final Tanh, an int knob written 2.0, messages that read well."""

from __future__ import annotations

import pytest
from conftest import assert_one_line_error, run_cli

from gbench import testing
from gbench.errors import GbenchError
from gbench.plugins.loading import load_plugins
from gbench.plugins.registry import Architecture, Hyperparameter, Loss, Registry

PLUGIN = """
from torch import nn

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Hyperparameter, Nets

BLOCKS = Hyperparameter("blocks", {blocks}, {bounds}help="residual blocks in G")


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU())

    def forward(self, x):
        return x + self.body(x)


def build(params, image_shape):
    blocks = [Block(64) for _ in range(params["blocks"])]
    generator = nn.Sequential(nn.Linear(16, 64), *blocks, nn.Linear(64, 784), {tanh}nn.Unflatten(1, image_shape))
    discriminator = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 64), nn.Dropout(0.1), nn.LeakyReLU(0.2), nn.Linear(64, 1)
    )
    return Nets(generator, discriminator, latent_dim=16)


@hookimpl
def gbench_register_architectures(register):
    register(Architecture("res-mlp", build, (BLOCKS,)))
"""


def _plugin(tmp_path, blocks="2", bounds="low=1, high=8, ", tanh="nn.Tanh(), "):
    path = tmp_path / "res_mlp.py"
    path.write_text(PLUGIN.format(blocks=blocks, bounds=bounds, tanh=tanh))
    return str(path)


def test_an_uninstalled_file_plugin_is_tested_with_plugin_equals_its_path(tmp_path):
    path = _plugin(tmp_path)
    result = testing.check_architecture("res-mlp", plugin=path)
    assert result.status == "ok" and result.steps == 3
    with pytest.raises(GbenchError) as caught:
        testing.check_architecture("res-mlp")  # not installed, no plugin=: the message says what to do
    message = str(caught.value)
    assert (
        "unknown architecture 'res-mlp'" in message
        and "check_architecture('res-mlp', plugin=\"path/to/file.py\")" in message
    )
    with pytest.raises(GbenchError, match="plugin .*res_mlp.py' registers no loss 'res-mlp'"):
        testing.check_loss("res-mlp", plugin=path)
    with pytest.raises(GbenchError, match="give registry= or plugin=, not both"):
        testing.check_architecture("res-mlp", plugin=path, registry=load_plugins().registry)


def test_a_generator_without_tanh_fails_gbench_run_before_training_with_the_testing_line(tmp_path):
    path = _plugin(tmp_path, tanh="")
    with pytest.raises(GbenchError) as caught:
        testing.check_architecture("res-mlp", plugin=path)
    line = str(caught.value)
    assert (
        "architecture 'res-mlp': the generator's images span" in line
        and "keep them in [-1, 1] (end with nn.Tanh())" in line
    )
    out = tmp_path / "out"
    result = run_cli("run", path, "--steps", "5", "--train-limit", "1000", "--eval-samples", "0", "--out", str(out))
    assert_one_line_error(result, line)
    assert not out.exists() or not any(out.iterdir())  # nothing trained


def test_an_int_knob_written_as_a_float_fails_at_registration_naming_it_and_its_type(tmp_path):
    with pytest.raises(GbenchError) as caught:
        load_plugins(extra=[_plugin(tmp_path, blocks="2.0")])
    message = str(caught.value)
    assert (
        "hyperparameter 'blocks' has the float default 2.0 but int bounds 1..8" in message
        and "write the default as 2" in message
    )
    # without bounds the declaration is a valid float knob; the build failure then names it
    with pytest.raises(GbenchError) as caught:
        testing.check_architecture("res-mlp", plugin=_plugin(tmp_path, blocks="2.0", bounds=""))
    assert "build failed: TypeError" in str(caught.value)
    assert "hyperparameter 'blocks' is a float because its default is written 2.0: write 2 to make it an int" in str(
        caught.value
    )


def test_generated_messages_use_an_before_a_vowel():
    registry = Registry()
    with pytest.raises(GbenchError, match="registered a Loss as an architecture"):
        registry.register("architecture", Loss("x", build=lambda p: None), owner="p")
    with pytest.raises(GbenchError, match="registered an Architecture as a loss"):
        registry.register("loss", Architecture("x", build=lambda p, s: None), owner="p")
    with pytest.raises(GbenchError, match="registered an architecture with an invalid name"):
        registry.register("architecture", Architecture("a b", build=lambda p, s: None), owner="p")
    with pytest.raises(GbenchError, match="give an int in 1..8"):
        Hyperparameter("n", 2, low=1, high=8).parse("x")
