import pytest
import torch

from gbench.plugins import load_plugins
from gbench.testing import check_architecture


def test_sn_mlp_meets_the_architecture_contract():
    check_architecture("sn-mlp")


def test_sn_mlp_trains_with_other_hyperparameters():
    check_architecture("sn-mlp", params={"hidden_dim": 32, "power_iterations": 3}, steps=2)


def test_every_discriminator_layer_has_spectral_norm_one():
    plugins = load_plugins()
    assert plugins.infos["sn-mlp"].source.startswith("distribution gbench-sn-mlp")
    nets = plugins.registry.architecture("sn-mlp").build(
        {"latent_dim": 8, "hidden_dim": 16, "power_iterations": 1}, (1, 28, 28)
    )
    for _ in range(20):  # each forward pass in training mode refines the estimate
        nets.discriminator(torch.rand(4, 1, 28, 28))
    linears = [module for module in nets.discriminator.modules() if isinstance(module, torch.nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=0.05)
