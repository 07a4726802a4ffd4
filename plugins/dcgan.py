"""DCGAN architecture (Radford et al., 2016) for 28x28 images (the nets of study S2), and 32x32 and 64x64.

Generator: ``Linear(latent, 2h*7*7)`` -> ``(2h, 7, 7)`` -> ConvTranspose to
``(h, 14, 14)`` -> ConvTranspose to ``(C, 28, 28)`` -> Tanh, with BatchNorm and
ReLU after the first two layers (``batchnorm=false`` drops the BatchNorm).

Discriminator: Conv stride 2 to ``(h, 14, 14)`` -> Conv stride 2 to
``(2h, 7, 7)`` -> Linear -> one logit, LeakyReLU(0.2) between; no BatchNorm,
so that it also serves as a WGAN-GP critic (the gradient penalty is taken
per image, which batch statistics would break). ``spectral_norm=true`` wraps
its three weight layers in spectral normalisation (Miyato et al., 2018).

``h`` is ``hidden_dim``: S2 sweeps latent 9..144 x hidden 9..144, batch 64.
Kernels are 4x4, stride 2, padding 1: each layer doubles or halves the side
exactly, the cheapest DCGAN layout that fits 28x28 (no cropping, no 5x5).
32x32 starts from 8x8 instead of 7x7; 64x64 adds a third doubling (G 4h -> 2h -> h
-> C, D C -> h -> 2h -> 4h). 1 or 3 channels; any other shape is refused in one line
naming the sizes served (see LAYOUTS).
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch._functorch import pyfunctorch
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Hyperparameter, Nets

LATENT_DIM = Hyperparameter(
    "latent_dim", 100, low=2, high=1024, log=True, search=(9, 144), help="size of the noise vector z"
)
HIDDEN_DIM = Hyperparameter(
    "hidden_dim", 64, low=4, high=512, log=True, search=(9, 144), help="channels h: G 2h -> h -> C, D C -> h -> 2h"
)
BATCHNORM = Hyperparameter("batchnorm", True, choices=(True, False), help="BatchNorm in the generator's hidden layers")
SPECTRAL_NORM = Hyperparameter(
    "spectral_norm", False, choices=(True, False), help="spectral normalisation of the discriminator's layers"
)


class _BatchableSpectralNorm(_SpectralNorm):
    """torch's spectral norm with its power iteration written without ``out=``:
    the same numbers, and it runs per member under vmap (a population), where
    ``F.normalize(..., out=self._u)`` has no batching rule.

    In a population, WGAN-GP takes its penalty per member with torch.func.grad,
    which refuses the power iteration's update of captured buffers; a solo
    run's autograd runs it. So that a member still iterates as its solo run
    does, the update runs one transform out, on the weight's value: it needs no
    gradient (torch's own runs under no_grad too)."""

    @torch.no_grad()
    def _power_method(self, weight_mat, n_power_iterations):
        level = _grad_transform_level()
        if level is None:
            self._iterate(weight_mat, n_power_iterations)
            return
        value = torch._C._functorch._unwrap_for_grad(weight_mat, level)
        with pyfunctorch.temporarily_pop_interpreter_stack():
            self._iterate(value, n_power_iterations)

    def _iterate(self, weight_mat, n_power_iterations):
        for _ in range(n_power_iterations):
            self._u.copy_(F.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps))
            self._v.copy_(F.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps))


def _grad_transform_level():
    """The level of the innermost torch.func transform when it is a gradient one (grad, vjp), else None."""
    if torch._C._functorch.maybe_current_level() is None:
        return None
    interpreter = pyfunctorch.retrieve_current_functorch_interpreter()
    return interpreter.level() if interpreter.key() == torch._C._functorch.TransformType.Grad else None


def _spectral_norm(layer):
    """Like torch.nn.utils.parametrizations.spectral_norm for Conv2d and Linear (dim 0); same state_dict keys."""
    parametrize.register_parametrization(
        layer, "weight", _BatchableSpectralNorm(layer.weight, n_power_iterations=1, dim=0, eps=1e-12)
    )
    return layer


#: Image sides dcgan serves -> the side its generator starts from and the doublings to reach it
#: (4x4 kernels, stride 2, padding 1: each layer doubles or halves the side exactly).
LAYOUTS = {28: (7, 2), 32: (8, 2), 64: (8, 3)}
CHANNELS = (1, 3)


def _widths(hidden_dim: int, doublings: int) -> list[int]:
    """Channels from the smallest feature map up: 2h, h for two doublings (the 28x28 layout of S2),
    4h, 2h, h for three."""
    return [hidden_dim * 2 ** (doublings - 1 - i) for i in range(doublings)]


class Generator(nn.Module):
    def __init__(self, latent_dim: int, hidden_dim: int, channels: int, batchnorm: bool, side: int = 28):
        super().__init__()
        start, doublings = LAYOUTS[side]
        widths = _widths(hidden_dim, doublings)

        def norm(width):
            return [nn.BatchNorm2d(width)] if batchnorm else []

        layers = [
            nn.Linear(latent_dim, widths[0] * start * start, bias=not batchnorm),
            nn.Unflatten(1, (widths[0], start, start)),
            *norm(widths[0]),
            nn.ReLU(),
        ]
        for wide, narrow in zip(widths, widths[1:]):  # 7 -> 14 (-> 28 ...): all but the last doubling
            layers += [
                nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=not batchnorm),
                *norm(narrow),
                nn.ReLU(),
            ]
        layers += [
            nn.ConvTranspose2d(widths[-1], channels, 4, stride=2, padding=1),
            nn.Tanh(),
        ]  # the last doubling, to the image
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, hidden_dim: int, channels: int, spectral_norm: bool, side: int = 28):
        super().__init__()
        start, doublings = LAYOUTS[side]
        widths = _widths(hidden_dim, doublings)[::-1]  # h, 2h (, 4h): the generator's mirror
        wrap = _spectral_norm if spectral_norm else (lambda layer: layer)
        layers = []
        for narrow, wide in zip([channels, *widths], widths):  # 28 -> 14 -> 7, halving each time
            layers += [wrap(nn.Conv2d(narrow, wide, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Flatten(), wrap(nn.Linear(widths[-1] * start * start, 1)))

    def forward(self, x):
        return self.net(x)


def check_shape(image_shape, name="dcgan"):
    """``(channels, side)`` of an image shape the DCGAN layouts serve; else a ValueError naming the sizes served."""
    channels, height, width = image_shape
    if height != width or height not in LAYOUTS or channels not in CHANNELS:
        sides = list(map(str, LAYOUTS))
        sizes = f"{', '.join(sides[:-1])} and {sides[-1]}"
        raise ValueError(
            f"{name} serves {sizes} pixel square images with 1 or 3 channels, not {channels}x{height}x{width}; "
            f"give --image-size {' or '.join(map(str, LAYOUTS))} (and --channels 1 or 3), "
            "or use mlp or vae, which take any shape"
        )
    return channels, height


def build_dcgan(params, image_shape):
    channels, height = check_shape(image_shape)
    return Nets(
        generator=Generator(params["latent_dim"], params["hidden_dim"], channels, params["batchnorm"], height),
        discriminator=Discriminator(params["hidden_dim"], channels, params["spectral_norm"], height),
        latent_dim=params["latent_dim"],
    )


@hookimpl
def gbench_register_architectures(register):
    register(
        Architecture(
            "dcgan",
            build_dcgan,
            (LATENT_DIM, HIDDEN_DIM, BATCHNORM, SPECTRAL_NORM),
            "S2's convolutional GAN for 28, 32 and 64 px, 1 or 3 channels: G Linear->ConvT->ConvT(->ConvT) "
            "(BatchNorm optional), D Conv->Conv(->Conv)->Linear (spectral norm optional)",
        )
    )
