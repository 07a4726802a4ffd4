"""Built-in discriminator step schedules."""

from gbench import hookimpl
from gbench.registry import Hyperparameter, Schedule


class KSteps:
    """k discriminator steps per generator step, both at the base learning rate."""

    def __init__(self, k: int):
        self.k = k

    def learning_rates(self, lr):
        return lr, lr

    def discriminator_steps(self, step, last):
        return self.k


@hookimpl
def gbench_register_schedules(register):
    register(
        Schedule(
            "k-steps",
            lambda params: KSteps(params["k"]),
            (Hyperparameter("k", 1, low=1, high=10, help="discriminator steps per generator step"),),
            "k discriminator steps per generator step (S6)",
        )
    )
