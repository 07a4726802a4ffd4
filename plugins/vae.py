"""VAE baseline (Kingma & Welling, 2014): a non-adversarial model trained by the same harness.

An MLP encoder maps an image to the mean and log-variance of q(z|x); an MLP
decoder maps z to one Bernoulli logit per pixel. The objective is the
negative ELBO per image, summed over pixels and averaged over the batch:

    -ELBO = BCE(decoder logits, (x + 1) / 2) + KL(q(z|x) || N(0, I))

with images x in [-1, 1] read as pixel intensities (x + 1) / 2 in [0, 1].
Sampling, as the generator: ``forward(z) = 2 sigmoid(logits) - 1 =
tanh(logits / 2)``, the decoder's mean image mapped back to [-1, 1].

The module that :class:`gbench.plugins.registry.Nets` calls the generator holds both
the encoder and the decoder, so the trainer's one optimizer trains both;
there is no discriminator, and no adversarial loss or D schedule applies.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Hyperparameter, Nets

LATENT_DIM = Hyperparameter("latent_dim", 20, low=2, high=1024, log=True, help="size of the latent code z")
HIDDEN_DIM = Hyperparameter(
    "hidden_dim", 400, low=8, high=2048, log=True, help="width of the encoder's and decoder's hidden layers"
)


class VAE(nn.Module):
    def __init__(self, latent_dim: int, hidden_dim: int, image_shape):
        super().__init__()
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        pixels = math.prod(image_shape)
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 2 * latent_dim),  # mean and log-variance
        )
        # one Bernoulli logit per pixel
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, pixels),
            nn.Unflatten(1, self.image_shape),
        )

    def forward(self, z):
        """Decode noise to images in [-1, 1]: the mean image, 2 sigmoid(logits) - 1."""
        return torch.tanh(self.decoder(z) / 2)

    def negative_elbo(self, real):
        """``(loss, metrics)``: the negative ELBO per image and its two terms (detached)."""
        mean, log_var = self.encoder(real).chunk(2, dim=1)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        logits = self.decoder(z)
        targets = (real + 1) / 2
        reconstruction = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / len(real)
        kl = 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum() / len(real)
        loss = reconstruction + kl
        return loss, {"reconstruction": reconstruction.detach(), "kl": kl.detach()}


def build_vae(params, image_shape):
    vae = VAE(params["latent_dim"], params["hidden_dim"], image_shape)
    return Nets(generator=vae, discriminator=None, latent_dim=params["latent_dim"], objective=vae.negative_elbo)


@hookimpl
def gbench_register_architectures(register):
    register(
        Architecture(
            "vae",
            build_vae,
            (LATENT_DIM, HIDDEN_DIM),
            "VAE baseline: MLP encoder/decoder, Bernoulli pixels, trained on the negative ELBO (no discriminator)",
        )
    )
