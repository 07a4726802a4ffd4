"""Built-in GAN losses. Discriminators give logits; these own the final activation.

What D(x) and D(G(z)) report depends on the loss's declared ``score``:

- ``probability`` (``non-saturating``, ``minimax``): the mean sigmoid of the
  logits, the discriminator's probability that an image is real.
- ``critic`` (``lsgan``, ``wgan-gp``, ``hinge``): the mean raw output. For
  LSGAN that output is regressed onto 1 for real and 0 for fake images, so
  its optimum for a fixed G is p_data / (p_data + p_g), the same quantity as
  the BCE probability, but it is not squashed and may leave [0, 1] while
  training. For WGAN-GP and hinge it is an unbounded critic value; only the
  gap D(x) - D(G(z)) means something (the WGAN-GP gap estimates the
  Wasserstein-1 distance).
"""

import torch
import torch.nn.functional as F

from gbench import hookimpl
from gbench.plugins.registry import Hyperparameter, Loss, LossTerms


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


class LeastSquaresLoss:
    """LSGAN (Mao et al., 2017) with targets a=0 (fake), b=1 (real), c=1.

    D minimises 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]; G minimises
    1/2 E[(D(G(z)) - 1)^2]. D(x), D(G(z)) are reported as mean raw outputs
    (score "critic"): regression values whose targets are 1 and 0.
    """

    def discriminator_loss(self, discriminator, real, fake):
        real_out, fake_out = _logits(discriminator, real), _logits(discriminator, fake)
        loss = 0.5 * (real_out - 1).square().mean() + 0.5 * fake_out.square().mean()
        return LossTerms(loss, real_out.detach().mean(), fake_out.detach().mean())

    def generator_loss(self, discriminator, fake):
        fake_out = _logits(discriminator, fake)
        return LossTerms(0.5 * (fake_out - 1).square().mean(), None, fake_out.detach().mean())


class WassersteinGPLoss:
    """WGAN-GP (Gulrajani et al., 2017): Wasserstein critic with a gradient penalty.

    The critic minimises E[D(G(z))] - E[D(x)] + gp_weight * E[(|grad D(x_hat)| - 1)^2]
    at x_hat = e x + (1 - e) G(z), e ~ U(0, 1) per image; G minimises -E[D(G(z))].
    The penalty's gradient is kept (create_graph=True), so the critic's step
    differentiates through it. The critic must not use BatchNorm.
    """

    def __init__(self, gp_weight: float):
        self.gp_weight = gp_weight

    def gradient_penalty(self, discriminator, real, fake):
        mix = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        interpolates = mix * real + (1 - mix) * fake
        if torch._C._functorch.maybe_current_level() is None:
            # A solo run: autograd's double backward, under which any critic runs, one whose forward changes
            # its own state included (spectral norm's power iteration updates its buffers in every forward).
            interpolates = interpolates.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(_logits(discriminator, interpolates).sum(), interpolates, create_graph=True)
        else:
            # Per member under vmap (a population), where autograd.grad cannot run: torch.func.grad, the same
            # differentiable gradient (its result stays in the outer graph). A critic that changes its own state in
            # forward cannot run under it, unless it does so one transform out as the built-in dcgan's spectral norm
            # does; the seeds of any other train one by one.
            grad = torch.func.grad(lambda x: _logits(discriminator, x).sum())(interpolates)
        # sqrt(sum + tiny) rather than norm(): finite gradient even where the critic is flat
        norm = grad.flatten(1).square().sum(dim=1).add(1e-12).sqrt()
        return self.gp_weight * (norm - 1).square().mean()

    def discriminator_loss(self, discriminator, real, fake):
        real_out, fake_out = _logits(discriminator, real), _logits(discriminator, fake)
        loss = fake_out.mean() - real_out.mean() + self.gradient_penalty(discriminator, real, fake)
        return LossTerms(loss, real_out.detach().mean(), fake_out.detach().mean())

    def generator_loss(self, discriminator, fake):
        fake_out = _logits(discriminator, fake)
        return LossTerms(-fake_out.mean(), None, fake_out.detach().mean())


class HingeLoss:
    """Hinge loss (Lim & Ye, 2017; Miyato et al., 2018).

    D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; G minimises -E[D(G(z))].
    """

    def discriminator_loss(self, discriminator, real, fake):
        real_out, fake_out = _logits(discriminator, real), _logits(discriminator, fake)
        loss = F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()
        return LossTerms(loss, real_out.detach().mean(), fake_out.detach().mean())

    def generator_loss(self, discriminator, fake):
        fake_out = _logits(discriminator, fake)
        return LossTerms(-fake_out.mean(), None, fake_out.detach().mean())


GP_WEIGHT = Hyperparameter(
    "gp_weight", 10.0, low=0.0, high=1000.0, search=(1.0, 100.0), log=False, help="weight of WGAN-GP's gradient penalty"
)


@hookimpl
def gbench_register_losses(register):
    register(
        Loss(
            "non-saturating",
            lambda params: BCELoss(saturating=False),
            description="BCE; generator maximises log D(G(z)) (the default)",
        )
    )
    register(
        Loss(
            "minimax",
            lambda params: BCELoss(saturating=True),
            description="BCE; generator minimises log(1 - D(G(z))), the original saturating game",
        )
    )
    register(
        Loss(
            "lsgan",
            lambda params: LeastSquaresLoss(),
            score="critic",
            description="least squares (LSGAN): D regresses real to 1, fake to 0; G pulls D(G(z)) to 1",
        )
    )
    register(
        Loss(
            "wgan-gp",
            lambda params: WassersteinGPLoss(float(params["gp_weight"])),
            (GP_WEIGHT,),
            score="critic",
            description="Wasserstein critic with gradient penalty gp_weight*(|grad D(x_hat)|-1)^2 (WGAN-GP)",
        )
    )
    register(
        Loss(
            "hinge",
            lambda params: HingeLoss(),
            score="critic",
            description="hinge: D minimises relu(1-D(x)) + relu(1+D(G(z))); G maximises D(G(z))",
        )
    )
