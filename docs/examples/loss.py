"""A gbench plugin: `smoothed-bce`, BCE with one-sided label smoothing (Salimans et al., 2016)."""

import torch
import torch.nn.functional as F

from gbench import hookimpl
from gbench.registry import Hyperparameter, Loss, LossTerms


class SmoothedBCE:
    def __init__(self, real_label):
        self.real_label = real_label

    def discriminator_loss(self, discriminator, real, fake):
        real_logits, fake_logits = discriminator(real).reshape(-1), discriminator(fake).reshape(-1)
        targets = torch.full_like(real_logits, self.real_label)  # real images count as 0.9, not 1
        loss = F.binary_cross_entropy_with_logits(real_logits, targets) + F.softplus(fake_logits).mean()
        return LossTerms(loss, torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean())

    def generator_loss(self, discriminator, fake):
        fake_logits = discriminator(fake).reshape(-1)
        return LossTerms(F.softplus(-fake_logits).mean(), None, torch.sigmoid(fake_logits.detach()).mean())


@hookimpl
def gbench_register_losses(register):
    register(
        Loss(
            "smoothed-bce",
            lambda params: SmoothedBCE(params["real_label"]),
            hyperparameters=(Hyperparameter("real_label", 0.9, low=0.5, high=1.0, help="D's target for real images"),),
            score="probability",  # real_score/fake_score are mean sigmoid outputs
            description="non-saturating BCE with one-sided label smoothing",
        )
    )
