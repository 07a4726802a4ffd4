"""Class-conditional GANs: `cmlp`, `cdcgan` and the `acgan` loss (docs/builtins.md#conditional-gans).

Both architectures are ``conditional``: gbench builds them for the data's class count and
calls ``generator(z, y)`` and ``discriminator(x, y)`` with int64 labels y (docs/plugins.md).

- The generator embeds y (``embed_dim`` numbers) and concatenates it to z, as course
  exercises do; `cdcgan`'s body is dcgan's Generator on the longer input.
- ``discriminator=concat``: the label enters with the image (`cmlp`: its embedding
  concatenated to the flattened image; `cdcgan`: broadcast as ``embed_dim`` extra input
  channels), and D gives one score.
- ``discriminator=projection`` (Miyato and Koyama, 2018): D(x, y) = psi(phi(x)) + <E[y], phi(x)>,
  phi the unconditional body (mlp's hidden layers; dcgan's convolutions), E a class
  embedding of phi's width. phi(x) never sees y, so ``phi(x) E^T``, the projection's term for
  every class, is a classifier of the image alone: D returns ``(B, 1 + K)``, the score and
  those K class logits, which the `acgan` loss reads (no extra weights).

`acgan` (Odena et al., 2017) is the non-saturating BCE game plus an auxiliary classifier's
cross-entropy, ``class_weight`` times: D's on real and fake images, G's on fake ones. It needs
the class logits, so it runs with ``discriminator=projection`` only (a concat D reads the
label off its input, so a classifier there would be trivial); gbench refuses anything else
before training.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Hyperparameter, Loss, LossTerms, Nets
from plugins import dcgan, mlp

EMBED_DIM = Hyperparameter("embed_dim", 10, low=1, high=256, log=True, help="size of the label embedding y -> R^d")
CONCAT_OR_PROJECTION = ("concat", "projection")


def _discriminator_choice(default):
    return Hyperparameter(
        "discriminator",
        default,
        choices=CONCAT_OR_PROJECTION,
        help="how D takes y: concat (with the input) or projection (Miyato and Koyama 2018; has class logits)",
    )


class ConditionalGenerator(nn.Module):
    """``body(cat(z, embed(y)))``: any generator of noise ``latent_dim + embed_dim`` wide.

    y may also be soft labels, float ``(B, K)``: their mix of the class embeddings (``gbench interpolate
    --from-label A --to-label B`` moves the embedding from class A's to class B's).
    """

    def __init__(self, body, num_classes, embed_dim):
        super().__init__()
        self.embed, self.body = nn.Embedding(num_classes, embed_dim), body

    def forward(self, z, y):
        embedded = y.to(self.embed.weight.dtype) @ self.embed.weight if y.is_floating_point() else self.embed(y)
        return self.body(torch.cat([z, embedded], dim=1))


class ProjectionDiscriminator(nn.Module):
    """``[psi(phi(x)) + <E[y], phi(x)>, phi(x) E^T]``: the score, then the K class logits (Miyato and Koyama 2018)."""

    def __init__(self, features, score, width, num_classes):
        super().__init__()
        self.features, self.score = features, score
        self.classes = nn.Embedding(num_classes, width)

    def forward(self, x, y):
        phi = self.features(x)
        class_logits = F.linear(phi, self.classes.weight)  # <E[c], phi(x)> for every class c
        projection = class_logits.gather(1, y[:, None])
        return torch.cat([self.score(phi) + projection, class_logits], dim=1)


class MLPConcatDiscriminator(nn.Module):
    """mlp's discriminator on ``cat(flatten(x), embed(y))``."""

    def __init__(self, hidden_dim, image_shape, num_classes, embed_dim):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = mlp._discriminator(hidden_dim, (math.prod(image_shape) + embed_dim,), 2, nn.ReLU)

    def forward(self, x, y):
        return self.net(torch.cat([x.flatten(1), self.embed(y)], dim=1))


class ConvConcatDiscriminator(nn.Module):
    """dcgan's discriminator on the image with ``embed(y)`` broadcast as extra channels."""

    def __init__(self, body, num_classes, embed_dim):
        super().__init__()
        self.embed, self.body = nn.Embedding(num_classes, embed_dim), body

    def forward(self, x, y):
        maps = self.embed(y)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.body(torch.cat([x, maps], dim=1))


def build_cmlp(params, image_shape, num_classes):
    latent_dim, hidden_dim, embed_dim = params["latent_dim"], params["hidden_dim"], params["embed_dim"]
    body = mlp._generator(latent_dim + embed_dim, hidden_dim, image_shape, batchnorm=False)
    discriminator: nn.Module
    if params["discriminator"] == "projection":
        phi = mlp._discriminator(hidden_dim, image_shape, 2, nn.ReLU)[:-1]  # Flatten, two hidden layers
        discriminator = ProjectionDiscriminator(phi, nn.Linear(hidden_dim, 1), hidden_dim, num_classes)
    else:
        discriminator = MLPConcatDiscriminator(hidden_dim, image_shape, num_classes, embed_dim)
    return Nets(ConditionalGenerator(body, num_classes, embed_dim), discriminator, latent_dim)


def build_cdcgan(params, image_shape, num_classes):
    channels, side = dcgan.check_shape(image_shape, "cdcgan")
    latent_dim, hidden_dim, embed_dim = params["latent_dim"], params["hidden_dim"], params["embed_dim"]
    body = dcgan.Generator(latent_dim + embed_dim, hidden_dim, channels, params["batchnorm"], side)
    discriminator: nn.Module
    if params["discriminator"] == "projection":
        layers = list(dcgan.Discriminator(hidden_dim, channels, params["spectral_norm"], side).net)
        score = layers[-1]  # the last Linear: phi's width in, one score out
        discriminator = ProjectionDiscriminator(nn.Sequential(*layers[:-1]), score, score.in_features, num_classes)
    else:
        conv = dcgan.Discriminator(hidden_dim, channels + embed_dim, params["spectral_norm"], side)
        discriminator = ConvConcatDiscriminator(conv, num_classes, embed_dim)
    return Nets(ConditionalGenerator(body, num_classes, embed_dim), discriminator, latent_dim)


class ACGANLoss:
    """ACGAN (Odena et al., 2017) on the non-saturating BCE game.

    D minimises BCE(real, fake) + class_weight * (CE(C(x), y_real) + CE(C(G(z, y)), y)); G minimises
    -log D(G(z, y)) + class_weight * CE(C(G(z, y)), y), C the discriminator's class logits.
    """

    def __init__(self, class_weight: float):
        self.class_weight = class_weight

    def discriminator_loss(self, discriminator, real, fake, real_labels, fake_labels):
        real_logits, real_classes = _judged(discriminator, real)
        fake_logits, fake_classes = _judged(discriminator, fake)
        adversarial = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        classes = F.cross_entropy(real_classes, real_labels) + F.cross_entropy(fake_classes, fake_labels)
        real_score, fake_score = torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean()
        return LossTerms(adversarial + self.class_weight * classes, real_score, fake_score)

    def generator_loss(self, discriminator, fake, fake_labels):
        fake_logits, fake_classes = _judged(discriminator, fake)
        loss = F.softplus(-fake_logits).mean() + self.class_weight * F.cross_entropy(fake_classes, fake_labels)
        return LossTerms(loss, None, torch.sigmoid(fake_logits.detach()).mean())


def _judged(discriminator, images):
    logits, classes = discriminator.judge(images)
    if classes is None:  # gbench's preflight refuses this before training; a direct caller learns it here
        raise ValueError("acgan needs a discriminator that returns class logits, (B, 1 + num_classes)")
    return logits, classes


CLASS_WEIGHT = Hyperparameter(
    "class_weight", 1.0, low=0.0, high=100.0, search=(0.1, 10.0), help="weight of ACGAN's classification loss"
)


@hookimpl
def gbench_register_architectures(register):
    register(
        Architecture(
            "cmlp",
            build_cmlp,
            (mlp.LATENT_DIM, mlp.HIDDEN_DIM, EMBED_DIM, _discriminator_choice("concat")),
            "conditional MLP GAN: G(cat(z, embed(y))); D on cat(x, embed(y)) or a projection D",
            conditional=True,
        )
    )
    register(
        Architecture(
            "cdcgan",
            build_cdcgan,
            (dcgan.LATENT_DIM, dcgan.HIDDEN_DIM, dcgan.BATCHNORM, dcgan.SPECTRAL_NORM, EMBED_DIM)
            + (_discriminator_choice("projection"),),
            "conditional DCGAN (28, 32, 64 px): G(cat(z, embed(y))); D with y as extra channels or a projection D",
            conditional=True,
        )
    )


@hookimpl
def gbench_register_losses(register):
    register(
        Loss(
            "acgan",
            lambda params: ACGANLoss(float(params["class_weight"])),
            (CLASS_WEIGHT,),
            description="ACGAN: BCE plus class_weight * cross-entropy of D's class logits (conditional nets only)",
            needs_labels=True,
        )
    )
