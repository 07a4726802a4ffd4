"""Built-in discriminator step schedules: ``k-steps``, ``ttur``, ``adaptive``."""

import math

from gbench import hookimpl
from gbench.plugins.registry import Hyperparameter, Schedule


class KSteps:
    """k discriminator steps per generator step, both at the base learning rate."""

    def __init__(self, k: int):
        self.k = k

    def learning_rates(self, lr):
        return lr, lr

    def discriminator_steps(self, step, last):
        return self.k


class TTUR:
    """Two time-scale update rule (Heusel et al., 2017): one D step per G step,
    D and G at their own learning rates ``d_lr`` and ``g_lr``. The base ``lr``
    is not used (set ``d_lr``/``g_lr`` instead)."""

    def __init__(self, d_lr: float, g_lr: float):
        self.d_lr, self.g_lr = d_lr, g_lr

    def learning_rates(self, lr):
        return self.d_lr, self.g_lr

    def discriminator_steps(self, step, last):
        return 1


class Adaptive:
    """Extra discriminator steps only while the discriminator is losing.

    D counts as losing when the previous step's discriminator loss is above
    ``threshold``; then it gets ``max_d_steps`` steps, else one. The first
    step (no previous loss) and a non-finite loss get one step. Reading the
    loss syncs the device once per step: the price of reacting to it.
    """

    def __init__(self, threshold: float, max_d_steps: int):
        self.threshold, self.max_d_steps = threshold, max_d_steps

    def learning_rates(self, lr):
        return lr, lr

    def discriminator_steps(self, step, last):
        if last.d_loss is None:
            return 1
        return self.max_d_steps if float(last.d_loss.item()) > self.threshold else 1


#: D's BCE loss at chance, -log(1/2) - log(1 - 1/2): above it D does worse than guessing.
BCE_AT_CHANCE = round(2 * math.log(2), 4)


def _lr(name: str, default: float, help: str) -> Hyperparameter:
    """A learning rate with the base lr's range (as in gbench.config)."""
    return Hyperparameter(name, default, low=1e-12, log=True, search=(1e-5, 1e-2), help=help)


@hookimpl
def gbench_register_schedules(register):
    register(
        Schedule(
            "k-steps",
            lambda params: KSteps(int(params["k"])),
            (Hyperparameter("k", 1, low=1, high=10, help="discriminator steps per generator step"),),
            "k discriminator steps per generator step (S6)",
        )
    )
    register(
        Schedule(
            "ttur",
            lambda params: TTUR(float(params["d_lr"]), float(params["g_lr"])),
            (
                _lr("d_lr", 4e-4, help="discriminator's Adam learning rate (replaces lr)"),
                _lr("g_lr", 1e-4, help="generator's Adam learning rate (replaces lr)"),
            ),
            "two time-scale update rule: one D step per G step at separate learning rates d_lr, g_lr",
        )
    )
    register(
        Schedule(
            "adaptive",
            lambda params: Adaptive(float(params["threshold"]), int(params["max_d_steps"])),
            (
                Hyperparameter(
                    "threshold",
                    BCE_AT_CHANCE,
                    low=-1e6,
                    high=1e6,
                    search=(0.5, 2.5),
                    help=(
                        "D counts as losing while its last loss is above this (default 2 "
                        "ln 2, BCE at chance; hinge: 2, lsgan: 0.25)"
                    ),
                ),
                Hyperparameter(
                    "max_d_steps", 5, low=1, high=10, help="discriminator steps per generator step while D is losing"
                ),
            ),
            "max_d_steps discriminator steps while D's last loss is above threshold, else one",
        )
    )
