"""MLP architectures of studies S1 and S6: `mlp`, `mlp-batchnorm`, `deep-leakyrelu`.

Discriminators return logits; the loss owns the final sigmoid, so the S1
discriminator's trailing Sigmoid lives in the BCE-with-logits loss.
"""

import math

from torch import nn

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Hyperparameter, Nets

LATENT_DIM = Hyperparameter("latent_dim", 64, low=2, high=1024, log=True, help="size of the noise vector z")
HIDDEN_DIM = Hyperparameter("hidden_dim", 256, low=8, high=2048, log=True, help="width of the hidden layers")


def _generator(latent_dim, hidden_dim, image_shape, batchnorm):
    def block(width_in):
        layers: list[nn.Module] = [nn.Linear(width_in, hidden_dim)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        return layers + [nn.ReLU()]

    return nn.Sequential(
        *block(latent_dim),
        *block(hidden_dim),
        nn.Linear(hidden_dim, math.prod(image_shape)),
        nn.Tanh(),
        nn.Unflatten(1, tuple(image_shape)),
    )


def _discriminator(hidden_dim, image_shape, depth, activation):
    """`depth` blocks of Linear(., hidden)+activation, then one logit per image."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(image_shape)
    for _ in range(depth):
        layers += [nn.Linear(width, hidden_dim), activation()]
        width = hidden_dim
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def build_mlp(params, image_shape):
    return Nets(
        generator=_generator(params["latent_dim"], params["hidden_dim"], image_shape, batchnorm=False),
        discriminator=_discriminator(params["hidden_dim"], image_shape, depth=2, activation=nn.ReLU),
        latent_dim=params["latent_dim"],
    )


def build_mlp_batchnorm(params, image_shape):
    return Nets(
        generator=_generator(params["latent_dim"], params["hidden_dim"], image_shape, batchnorm=True),
        discriminator=_discriminator(params["hidden_dim"], image_shape, depth=2, activation=nn.ReLU),
        latent_dim=params["latent_dim"],
    )


def build_deep_leakyrelu(params, image_shape):
    return Nets(
        generator=_generator(params["latent_dim"], params["hidden_dim"], image_shape, batchnorm=False),
        discriminator=_discriminator(
            params["hidden_dim"], image_shape, depth=params["depth"], activation=lambda: nn.LeakyReLU(0.2)
        ),
        latent_dim=params["latent_dim"],
    )


@hookimpl
def gbench_register_architectures(register):
    register(
        Architecture("mlp", build_mlp, (LATENT_DIM, HIDDEN_DIM), "S1's MLP GAN: G and D with two hidden ReLU layers")
    )
    register(
        Architecture(
            "mlp-batchnorm",
            build_mlp_batchnorm,
            (LATENT_DIM, HIDDEN_DIM),
            "S1's MLP GAN with BatchNorm in the generator's hidden layers",
        )
    )
    register(
        Architecture(
            "deep-leakyrelu",
            build_deep_leakyrelu,
            (
                LATENT_DIM,
                HIDDEN_DIM,
                Hyperparameter("depth", 2, low=1, high=8, help="discriminator blocks of Linear+LeakyReLU(0.2)"),
            ),
            "S6's MLP GAN: a discriminator of `depth` Linear+LeakyReLU(0.2) blocks",
        )
    )
