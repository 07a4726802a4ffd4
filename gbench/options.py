"""The run options, each declared once: name, type, default, help, range, and where it may be given.

:data:`OPTIONS` is the one table. Everything else is derived from it:
:class:`gbench.config.RunConfig`'s and :class:`gbench.config.RunSettings`' defaults, the
command-line options of ``gbench run``, ``tune`` and ``sweep`` (gbench/commands/_options.py),
the keys a ``--config`` file and a suite's tables accept, and the checks of their values.
To add a run option, add one :class:`RunOption` to :data:`OPTIONS` (docs/development.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gbench.errors import GbenchError
from gbench.plugins.registry import Hyperparameter, Value

BATCH_SIZE = Hyperparameter("batch_size", 100, low=1, high=4096, log=True, tunable=False, help="images per batch")

#: Knobs of the trainer and its Adam optimizers, settable like any plugin's.
TRAINING_HYPERPARAMETERS = (
    BATCH_SIZE,
    Hyperparameter(
        "lr", 2e-4, low=1e-12, log=True, search=(1e-5, 1e-2), help="Adam learning rate (schedules may split it)"
    ),
    Hyperparameter("beta1", 0.5, low=0.0, high=0.999, help="Adam beta1"),
    Hyperparameter("beta2", 0.999, low=0.0, high=0.9999, tunable=False, help="Adam beta2"),
)

#: The training length when neither epochs nor steps is given (RunConfig.total_steps).
DEFAULT_EPOCHS = 5.0

#: The fraction of own data without a test split held out as its test split (``--holdout``'s, where not given).
DEFAULT_HOLDOUT = 0.1

#: Where an option's value lands: a RunConfig field, an EvalOptions field (RunConfig.eval), a DataOptions field
#: (RunConfig.data: own data's shape), a RunSettings field, or nowhere by itself (read by hand: architecture, seeds,
#: devices, batch_size, set, config, params, plugin).
RUN, EVAL, DATA, SETTINGS, BY_HAND = "run", "eval", "data", "settings", ""


@dataclass(frozen=True)
class RunOption:
    """One run option. ``name`` is its key in a ``--config`` file and a suite table, and
    ``--name-with-dashes`` on the command line; ``help`` may say ``{default}``."""

    name: str
    # bool (a switch on the command line), int, float or str are checked
    # (low/high/choices); list and dict options are read by hand
    type: type
    help: str
    default: Any = None  # None: not set (the help says what then happens)
    low: float | None = None
    high: float | None = None
    choices: tuple[Value, ...] | None = None  # text or numbers (--channels 1 or 3)
    example: Value | None = None  # what an error suggests where the default is None and low is no good example
    lands: str = RUN
    attribute: str | None = None  # the field it lands in, when not ``name`` (eval_samples -> RunConfig.eval.samples)
    group: str | None = "training"  # its section in `gbench run --help`; None: no command-line option
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # turns the option's text into its value (raising GbenchError)
    repeat: bool = False  # the option may be given several times (--set)
    file: bool = True  # a key of a --config file
    suite: bool = True  # a key of a suite's [base], variants, [grid] and [quick] (only where ``file`` too)
    check: bool = True  # checked by this table (False: by what reads it, e.g. batch_size by its hyperparameter)
    sweep_help: str | None = (
        None  # its help in `gbench sweep` (an override of the suite's), where it differs from ``help``
    )

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def field(self) -> str:
        return self.attribute or self.name

    @property
    def shown_default(self) -> str:
        """The default as a user writes it: ``(0,)`` is ``0``, ``5.0`` is ``5``."""
        if isinstance(self.default, tuple):
            return ",".join(map(str, self.default))
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def help_text(self, command: str = "run") -> str:
        text = self.sweep_help if command == "sweep" and self.sweep_help is not None else self.help
        return text.format(default=self.shown_default)

    def checker(self) -> Hyperparameter | None:
        """The check of a typed or text value from a file or the command line; None for list and dict options."""
        if not self.check or self.type not in (bool, int, float, str):
            return None
        example = next((v for v in (self.default, self.example, self.low) if v is not None), "")
        return Hyperparameter(self.name, self.type(example), low=self.low, high=self.high, choices=self.choices)


#: What ``--devices`` may list: one device per worker.
DEVICE_PATTERN = r"cpu|cuda(:[0-9]+)?|mps"


def parse_devices(text: str) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``: the devices parallel workers take in turn."""
    devices = [part.strip() for part in text.split(",") if part.strip()]
    bad = next((d for d in devices if not re.fullmatch(DEVICE_PATTERN, d)), None)
    if not devices or bad is not None:
        what = f"{bad!r} is not" if bad is not None else "names no device; list"
        raise GbenchError(
            f"--devices {text!r}: {what} cpu, cuda, cuda:N or mps; write for example --devices cuda:0,cuda:1"
        )
    if len(set(devices)) != len(devices):
        raise GbenchError(
            f"--devices {text!r} names a device twice; give each device once, e.g. --devices cuda:0,cuda:1"
        )
    return devices


TRAINING, EVALUATION, POPULATIONS = "training", "evaluation", "populations and precision"
OWN_DATA = "your own images (--dataset folder:PATH or npz:PATH)"

#: Every run option, in the order of `gbench run --help`.
OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        "architecture",
        list,
        "train only these of the target's architectures (default: all it provides)",
        metavar="NAME[,NAME]",
        lands=BY_HAND,
    ),
    RunOption("dataset", str, "dataset name (default {default}; see `gbench plugins`)", "mnist"),
    RunOption(
        "epochs", float, f"training length in epochs (default {DEFAULT_EPOCHS:g})", low=1e-9, example=DEFAULT_EPOCHS
    ),
    RunOption("steps", int, "training length in generator steps (wins over --epochs)", low=1),
    RunOption("batch_size", int, f"images per batch (default {BATCH_SIZE.default})", low=1, lands=BY_HAND, check=False),
    RunOption(
        "seeds",
        list,
        "one run per seed: 0,1,2 or 0-4 (default {default})",
        (0,),
        lands=BY_HAND,
        suite=False,
        sweep_help=(
            "seeds to run instead of the suite's: 0,1,2 or 0-4; or auto[:MAX]: 3 seeds, then more only "
            "where the comparison with the baseline is undecided, up to MAX (default 10)"
        ),
    ),
    RunOption(
        "set",
        list,
        "set any hyperparameter of the architecture, loss, schedule or optimizer (repeatable)",
        metavar="KEY=VALUE",
        repeat=True,
        lands=BY_HAND,
        file=False,
    ),
    RunOption("loss", str, "loss name (default {default})", "non-saturating"),
    RunOption("schedule", str, "discriminator step schedule (default {default})", "k-steps"),
    RunOption(
        "device",
        str,
        "training device: {default} (default: cuda when present), cpu, cuda, cuda:N or mps",
        "auto",
        metavar="DEVICE",
        sweep_help="training device: {default}, cpu, cuda, cuda:N or mps (default: the suite's, else {default})",
    ),
    RunOption(
        "devices",
        list,
        "parallel workers take these devices in turn, e.g. cuda:0,cuda:1 (one GPU per worker)",
        metavar="DEV[,DEV]",
        parse=parse_devices,
        lands=BY_HAND,
        file=False,
        sweep_help=(
            "with --jobs N: the workers take these devices in turn, e.g. --devices cuda:0,cuda:1 (one GPU per worker)"
        ),
    ),
    RunOption("threads", int, "CPU threads per run (default: torch's)", low=1),
    RunOption("data_root", str, "folder holding the datasets (else $GBENCH_DATA, the cache, system places)"),
    RunOption("train_limit", int, "train on the first N training images only", low=1),
    RunOption("log_every", int, "record metrics every N steps (default {default})", 50, low=1),
    RunOption("checkpoint_every", int, "save a resumable checkpoint every N steps", low=1),
    RunOption(
        "out",
        str,
        "results folder (default {default})",
        "runs",
        lands=SETTINGS,
        suite=False,
        sweep_help="results folder (default {default}/SUITE-NAME, or {default}/SUITE-NAME-quick with --quick)",
    ),
    RunOption(
        "config", str, "TOML file of defaults for these options (options given here win)", lands=BY_HAND, file=False
    ),
    RunOption(
        "ema",
        float,
        "keep an exponential moving average of the generator's weights with this "
        "decay, e.g. 0.999 (0 < DECAY < 1, warmed up as "
        "TensorFlow's EMA: min(DECAY, (1+t)/(10+t))); evaluation, "
        "samples.png and generator.pt then use it (default: off)",
        low=1e-6,
        high=1 - 1e-6,
        example=0.999,
        metavar="DECAY",
    ),
    RunOption(
        "image_size",
        int,
        "resize the shorter side to N and centre-crop to NxN (default: the images' own size)",
        low=1,
        high=4096,
        metavar="N",
        lands=DATA,
        group=OWN_DATA,
    ),
    RunOption(
        "channels",
        int,
        "convert the images to 1 (grey) or 3 (RGB) channels (default: the data's)",
        choices=(1, 3),
        example=3,
        metavar="1|3",
        lands=DATA,
        group=OWN_DATA,
    ),
    RunOption(  # a test split needs 2 images at least, a training split most of the data: 0.001..0.9
        "holdout",
        float,
        f"fraction held out, seeded, as the test split of data without one (default {DEFAULT_HOLDOUT:g})",
        low=0.001,
        high=0.9,
        example=DEFAULT_HOLDOUT,
        metavar="FRACTION",
        lands=DATA,
        group=OWN_DATA,
    ),
    RunOption(
        "plugin",
        list,
        "also load this plugin, e.g. a dataset plugin beside TARGET (repeatable)",
        metavar="FILE.py|MODULE",
        repeat=True,
        lands=BY_HAND,
        file=False,
        group=OWN_DATA,
        sweep_help=(
            "also load this plugin beside the suite's target, e.g. a dataset plugin "
            "(repeatable; a suite's [suite] plugins = [...] lists its own)"
        ),
    ),
    RunOption(
        "eval_samples",
        int,
        "generated samples for FID etc. (default {default}; 0 turns evaluation off)",
        10_000,
        low=0,
        lands=EVAL,
        attribute="samples",
        group=EVALUATION,
    ),
    RunOption(
        "eval_every",
        int,
        "also evaluate every N steps during training (an FID curve)",
        low=1,
        lands=EVAL,
        attribute="every",
        group=EVALUATION,
    ),
    RunOption(
        "fid_extractor",
        str,
        "feature extractor: lenet-mnist, lenet-fashion-mnist, inception (default: the dataset's LeNet)",
        lands=EVAL,
        attribute="extractor",
        group=EVALUATION,
    ),
    RunOption(
        "inception_weights",
        str,
        "path to inception-v3-compat weights (no download needed)",
        lands=EVAL,
        group=EVALUATION,
    ),
    RunOption(
        "population",
        str,
        "{default} (default): the seeds of a configuration train as one "
        "population where that is faster (a GPU, or bf16; "
        "one by one on a CPU in fp32), and a line says which and why; on: always as one population; off: one by one",
        "auto",
        choices=("auto", "on", "off"),
        lands=SETTINGS,
        group=POPULATIONS,
        sweep_help="{default} (default): a worker takes the waiting seeds of a variant together "
        "and trains them as one population where that is faster "
        "(a GPU, or bf16; one by one on a CPU in fp32); on: always; off: one run at a time",
    ),
    RunOption(
        "population_size",
        int,
        "at most N members per population (for memory; default all seeds)",
        low=1,
        lands=SETTINGS,
        group=POPULATIONS,
        sweep_help="at most N members per population, for memory (default: all of a variant's seeds)",
    ),
    RunOption(
        "precision",
        str,
        "{default} (default) or bf16: autocast the forward passes (weights, Adam state stay float32)",
        "fp32",
        choices=("fp32", "bf16"),
        group=POPULATIONS,
    ),
    RunOption("params", dict, "hyperparameters by name, e.g. [params] latent_dim = 128", lands=BY_HAND, group=None),
)


def option(name: str) -> RunOption:
    """The declaration of run option ``name``."""
    for declared in OPTIONS:
        if declared.name == name:
            return declared
    raise KeyError(name)


def default(name: str) -> Any:
    """Run option ``name``'s default: what a dataclass field or
    a function's parameter says instead of spelling it again."""
    return option(name).default


def config_file_keys() -> frozenset[str]:
    """The keys a ``--config FILE.toml`` may hold."""
    return frozenset(o.name for o in OPTIONS if o.file)


def suite_keys() -> tuple[str, ...]:
    """The keys a suite's [base], a variant, a [grid] axis and [quick] may set, sorted."""
    return tuple(sorted(o.name for o in OPTIONS if o.file and o.suite))


def checkers() -> dict[str, Hyperparameter]:
    """Each checked option's check, by key: :meth:`Hyperparameter.coerce`, as a plugin's hyperparameters are checked
    (one checker: ``steps = true`` fails the same way in a config file, a suite and on the command line)."""
    return {o.name: hp for o in OPTIONS if o.file and (hp := o.checker()) is not None}
