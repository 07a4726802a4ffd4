import pytest

from gbench.errors import GbenchError
from gbench.plugins.registry import Architecture, Hyperparameter, Loss, Registry


def _arch(name, *hps):
    return Architecture(name, build=lambda params, shape: None, hyperparameters=hps)


def test_duplicate_name_names_both_owners():
    registry = Registry()
    registry.register("architecture", _arch("mlp"), owner="first")
    with pytest.raises(GbenchError, match=r"'mlp' is registered twice: by plugin 'first' and by plugin 'second'"):
        registry.register("architecture", _arch("mlp"), owner="second")


def test_unknown_name_lists_known_and_suggests():
    registry = Registry()
    for name in ("mlp", "mlp-batchnorm", "dcgan"):
        registry.register("architecture", _arch(name), owner="p")
    with pytest.raises(GbenchError) as error:
        registry.architecture("mlpp")
    message = str(error.value)
    assert "unknown architecture 'mlpp'" in message
    assert "dcgan, mlp, mlp-batchnorm" in message
    assert "did you mean 'mlp'?" in message.lower()


def test_wrong_kind_and_bad_name_are_rejected():
    registry = Registry()
    with pytest.raises(GbenchError, match="expected gbench.plugins.registry.Architecture"):
        registry.register("architecture", Loss("x", build=lambda p: None), owner="p")
    with pytest.raises(GbenchError, match="invalid name"):
        registry.register("architecture", _arch("has space"), owner="p")


def test_bad_hyperparameter_declarations_are_rejected():
    registry = Registry()
    with pytest.raises(GbenchError, match="default of hyperparameter 'width' is invalid.*outside its range"):
        registry.register("architecture", _arch("a", Hyperparameter("width", 5, low=8, high=64)), owner="p")
    with pytest.raises(GbenchError, match="has no default"):
        registry.register("architecture", _arch("b", Hyperparameter("width", None)), owner="p")


def test_list_with_wildcards():
    registry = Registry()
    for name in ("mlp", "mlp-batchnorm", "dcgan"):
        registry.register("architecture", _arch(name), owner="p")
    assert registry.names("architecture", "mlp*") == ["mlp", "mlp-batchnorm"]


@pytest.mark.parametrize(
    "hp, text, expected",
    [
        (Hyperparameter("n", 4, low=1, high=10), "7", 7),
        (Hyperparameter("n", 4, low=1, high=10), "7.0", 7),
        (Hyperparameter("lr", 0.1, low=0.0, high=1.0), "1e-3", 1e-3),
        (Hyperparameter("flag", False), "true", True),
        (Hyperparameter("mode", "a", choices=("a", "b")), "b", "b"),
    ],
)
def test_parse_good_values(hp, text, expected):
    value = hp.parse(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "hp, text, needle",
    [
        (Hyperparameter("n", 4, low=1, high=10), "abc", "n='abc' is not a valid int"),
        (Hyperparameter("n", 4, low=1, high=10), "2.5", "not a valid int"),
        (Hyperparameter("n", 4, low=1, high=10), "11", "outside its range 1..10"),
        (Hyperparameter("lr", 0.1), "nan", "not a finite number"),
        (Hyperparameter("mode", "a", choices=("a", "b")), "c", "not one of {a, b}"),
        (Hyperparameter("flag", False), "maybe", "not a valid bool"),
    ],
)
def test_parse_bad_values(hp, text, needle):
    with pytest.raises(GbenchError, match=needle.replace("(", r"\(").replace("{", r"\{")):
        hp.parse(text)
