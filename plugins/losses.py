"""Built-in GAN losses. Discriminators give logits; these own the sigmoid.

D(x) and D(G(z)) are reported as the mean sigmoid of the logits, a probability.
"""

import torch
import torch.nn.functional as F

from gbench import hookimpl
from gbench.registry import Loss, LossTerms


def _logits(discriminator, images):
    return discriminator(images).reshape(-1)


class BCELoss:
    """Binary cross-entropy on logits (Goodfellow et al., 2014).

    The discriminator maximises log D(x) + log(1 - D(G(z))). The generator
    either minimises log(1 - D(G(z))) (`saturating`, the original minimax game,
    whose gradient vanishes when D wins) or maximises log D(G(z)) (the
    non-saturating trick the same paper recommends).
    """

    def __init__(self, saturating: bool):
        self.saturating = saturating

    def discriminator_loss(self, discriminator, real, fake):
        real_logits, fake_logits = _logits(discriminator, real), _logits(discriminator, fake)
        # softplus(-l) = -log sigmoid(l), softplus(l) = -log(1 - sigmoid(l)), stable for any logit.
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        return LossTerms(loss, torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean())

    def generator_loss(self, discriminator, fake):
        fake_logits = _logits(discriminator, fake)
        if self.saturating:
            loss = -F.softplus(fake_logits).mean()  # log(1 - D(G(z))), minimised
        else:
            loss = F.softplus(-fake_logits).mean()  # -log D(G(z)), minimised
        return LossTerms(loss, None, torch.sigmoid(fake_logits.detach()).mean())


@hookimpl
def gbench_register_losses(register):
    register(Loss("non-saturating", lambda params: BCELoss(saturating=False), description="BCE; generator maximises log D(G(z)) (the default)"))
    register(Loss("minimax", lambda params: BCELoss(saturating=True), description="BCE; generator minimises log(1 - D(G(z))), the original saturating game"))
