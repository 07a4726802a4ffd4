"""A gbench plugin: packed discriminators (PacGAN, Lin et al. 2018): `pacdcgan2`, `pacdcgan3`, `pacdcgan4`, `pacmlp2` (and `pacdcgan1`, dcgan itself).

The discriminator judges m samples at once, concatenated along channels, all
real or all generated: a generator that repeats itself makes packs unlike the
real ones, which a one-sample discriminator cannot see. :func:`packed` wraps
any architecture whose discriminator follows its input's channel count (the
built-in dcgan and mlp do): the generator is the base architecture's, built
first so that a seed gives the same generator as the unpacked run; the
discriminator is the base's built for ``m * C`` channels, behind
:class:`PackedDiscriminator`. gbench's core is untouched: each image of a pack
gets the pack's logit, so every loss's mean over images is PacGAN's mean over
packs (for wgan-gp, the per-image penalty sees m times a pack's gradient; the
paper used the BCE loss, gbench's default non-saturating).
"""

from torch import nn

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Nets
from plugins import dcgan, mlp


class PackedDiscriminator(nn.Module):
    """``(B, C, H, W)`` images -> ``(B,)`` logits: consecutive groups of ``packing`` images judged as one ``(packing*C, H, W)`` input."""

    def __init__(self, discriminator: nn.Module, packing: int):
        super().__init__()
        self.discriminator, self.packing = discriminator, packing

    def forward(self, images):
        count, m = images.shape[0], self.packing
        packs = -(-count // m)
        if count % m:
            # Training batches are whole packs (build checks batch_size); gbench's shape and population probes
            # send 2 or 4 images: the last pack is completed with the batch's first images.
            images = images.repeat(-(-packs * m // count), 1, 1, 1)[: packs * m]
        # (packs*m, C, H, W) -> (packs, m*C, H, W): a pack's images side by side along channels, as PacGAN's
        logits = self.discriminator(images.reshape(packs, m * images.shape[1], *images.shape[2:])).reshape(packs)
        return logits.repeat_interleave(m)[:count]


def packed(base: Architecture, packing: int, name: str) -> Architecture:
    """``base`` with its discriminator judging packs of ``packing`` samples; the same hyperparameters."""

    def build(params, image_shape):
        batch_size = params.get("batch_size")
        if isinstance(batch_size, int) and batch_size % packing:
            raise ValueError(
                f"{name} packs {packing} images per discriminator input: batch_size {batch_size} is not a multiple of {packing}; give e.g. --batch-size {batch_size - batch_size % packing or packing}"
            )
        nets = base.build(params, image_shape)
        channels, height, width = image_shape
        wide = base.build(params, (packing * channels, height, width))
        return Nets(generator=nets.generator, discriminator=PackedDiscriminator(wide.discriminator, packing), latent_dim=nets.latent_dim)

    return Architecture(name, build, base.hyperparameters, f"{base.name} with PacGAN packing: D sees {packing} samples concatenated along channels")


# The built-in specs these wrap (the names and hyperparameters gbench's own dcgan and mlp plugins register).
DCGAN = Architecture("dcgan", dcgan.build_dcgan, (dcgan.LATENT_DIM, dcgan.HIDDEN_DIM, dcgan.BATCHNORM, dcgan.SPECTRAL_NORM))
MLP = Architecture("mlp", mlp.build_mlp, (mlp.LATENT_DIM, mlp.HIDDEN_DIM))


@hookimpl
def gbench_register_architectures(register):
    # pacdcgan1 is dcgan itself (no wrapper, the same build): the unpacked baseline of a suite whose target is this file
    register(Architecture("pacdcgan1", DCGAN.build, DCGAN.hyperparameters, "dcgan unchanged (packing 1): the baseline of the pacdcgan architectures"))
    for packing in (2, 3, 4):
        register(packed(DCGAN, packing, f"pacdcgan{packing}"))
    register(packed(MLP, 2, "pacmlp2"))
