"""A gbench plugin: `d-warmup`, extra discriminator steps while training starts."""

from gbench import hookimpl
from gbench.registry import Hyperparameter, Schedule


class DWarmup:
    def __init__(self, warmup_steps, warmup_k):
        self.warmup_steps, self.warmup_k = warmup_steps, warmup_k

    def learning_rates(self, lr):
        return lr, lr  # (discriminator_lr, generator_lr)

    def discriminator_steps(self, step, last):
        # `last` holds the previous step's losses as tensors; this schedule ignores them
        return self.warmup_k if step < self.warmup_steps else 1


@hookimpl
def gbench_register_schedules(register):
    register(
        Schedule(
            "d-warmup",
            lambda params: DWarmup(params["warmup_steps"], params["warmup_k"]),
            hyperparameters=(
                Hyperparameter("warmup_steps", 100, low=0, high=100_000, tunable=False, help="generator steps of warm-up"),
                Hyperparameter("warmup_k", 5, low=1, high=20, help="discriminator steps per generator step during warm-up"),
            ),
            description="warmup_k discriminator steps per generator step for warmup_steps steps, then one",
        )
    )
