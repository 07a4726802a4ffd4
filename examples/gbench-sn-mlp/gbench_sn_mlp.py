"""gbench-sn-mlp: an MLP GAN whose discriminator uses spectral normalisation.

Spectral normalisation (Miyato et al., 2018) divides each discriminator
weight by its largest singular value, estimated by power iteration, which
keeps the discriminator 1-Lipschitz per layer and steadies training.
"""

import math

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gbench import hookimpl
from gbench.registry import Architecture, Hyperparameter, Nets

__version__ = "0.1.0"

HYPERPARAMETERS = (
    Hyperparameter("latent_dim", 64, low=2, high=1024, log=True, help="size of the noise vector z"),
    Hyperparameter("hidden_dim", 256, low=8, high=2048, log=True, help="width of the hidden layers"),
    Hyperparameter(
        "power_iterations", 1, low=1, high=10, tunable=False, help="power-iteration steps per forward pass of D"
    ),
)


def build(params, image_shape):
    latent_dim, hidden_dim = params["latent_dim"], params["hidden_dim"]
    pixels = math.prod(image_shape)

    def sn(layer):
        return spectral_norm(layer, n_power_iterations=params["power_iterations"])

    generator = nn.Sequential(
        nn.Linear(latent_dim, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, pixels),
        nn.Tanh(),
        nn.Unflatten(1, tuple(image_shape)),
    )
    discriminator = nn.Sequential(
        nn.Flatten(),
        sn(nn.Linear(pixels, hidden_dim)),
        nn.LeakyReLU(0.2),
        sn(nn.Linear(hidden_dim, hidden_dim)),
        nn.LeakyReLU(0.2),
        sn(nn.Linear(hidden_dim, 1)),  # one logit per image: the loss owns the sigmoid
    )
    return Nets(generator=generator, discriminator=discriminator, latent_dim=latent_dim)


@hookimpl
def gbench_register_architectures(register):
    register(
        Architecture(
            "sn-mlp", build, HYPERPARAMETERS, "MLP GAN with spectral normalisation on every discriminator layer"
        )
    )
