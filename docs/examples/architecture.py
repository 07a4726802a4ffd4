"""A gbench plugin: `mlp-dropout`, an MLP GAN whose discriminator uses dropout."""

import math

from torch import nn

from gbench import hookimpl
from gbench.registry import Architecture, Hyperparameter, Nets


def build(params, image_shape):
    latent_dim, hidden, pixels = params["latent_dim"], params["hidden_dim"], math.prod(image_shape)
    generator = nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ReLU(),
        nn.Linear(hidden, pixels), nn.Tanh(),  # pixels in [-1, 1]
        nn.Unflatten(1, tuple(image_shape)),  # (B, C*H*W) -> (B, C, H, W)
    )
    discriminator = nn.Sequential(
        nn.Flatten(),
        nn.Linear(pixels, hidden), nn.LeakyReLU(0.2), nn.Dropout(params["dropout"]),
        nn.Linear(hidden, 1),  # one logit per image: the loss owns the sigmoid
    )
    return Nets(generator=generator, discriminator=discriminator, latent_dim=latent_dim)


@hookimpl
def gbench_register_architectures(register):
    register(
        Architecture(
            "mlp-dropout",
            build,
            hyperparameters=(
                Hyperparameter("latent_dim", 64, low=2, high=1024, log=True, help="size of the noise vector z"),
                Hyperparameter("hidden_dim", 256, low=8, high=2048, log=True, help="width of the hidden layer"),
                Hyperparameter("dropout", 0.3, low=0.0, high=0.9, help="dropout rate in the discriminator"),
            ),
            description="one-hidden-layer MLP GAN with dropout in the discriminator",
        )
    )
