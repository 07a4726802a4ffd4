"""A gbench plugin: PacGAN (Lin et al. 2018): dcgan's or mlp's generator, and a discriminator built for m*C channels to judge m samples at once."""

from torch import nn

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Nets
from plugins import dcgan, mlp


class PackedDiscriminator(nn.Module):
    def __init__(self, discriminator, packing):
        super().__init__()
        self.discriminator, self.packing = discriminator, packing

    def forward(self, images):  # (B, C, H, W) -> (B,): each image gets its pack's logit, so a loss's mean is PacGAN's mean over packs
        count, m = images.shape[0], self.packing
        packs = -(-count // m)  # build checks that a training batch is whole packs; gbench's probes send 2 or 4 images,
        images = images.repeat(-(-packs * m // count), 1, 1, 1)[: packs * m]  # so the last pack is filled from the first
        logits = self.discriminator(images.reshape(packs, m * images.shape[1], *images.shape[2:])).reshape(packs)
        return logits.repeat_interleave(m)[:count]


def packed(name, build_base, build_judge, hyperparameters, packing):
    def build(params, image_shape):
        if (size := params["batch_size"]) % packing:
            raise ValueError(f"{name}: batch_size {size} is not a multiple of its packing {packing}; give e.g. --batch-size {size - size % packing or packing}")
        nets, (channels, height, width) = build_base(params, image_shape), image_shape  # the base checks the data's shape
        wide = build_judge(params, (packing * channels, height, width))
        return Nets(generator=nets.generator, discriminator=PackedDiscriminator(wide, packing), latent_dim=nets.latent_dim)

    return Architecture(name, build, hyperparameters, f"PacGAN: its discriminator sees {packing} samples concatenated along channels")


@hookimpl
def gbench_register_architectures(register):
    judge = lambda params, shape: dcgan.Discriminator(params["hidden_dim"], shape[0], params["spectral_norm"], shape[1])  # noqa: E731 - any C
    for packing in (2, 3, 4):
        register(packed(f"pacdcgan{packing}", dcgan.build_dcgan, judge, (dcgan.LATENT_DIM, dcgan.HIDDEN_DIM, dcgan.BATCHNORM, dcgan.SPECTRAL_NORM), packing))
    register(packed("pacmlp2", mlp.build_mlp, lambda params, shape: mlp.build_mlp(params, shape).discriminator, (mlp.LATENT_DIM, mlp.HIDDEN_DIM), 2))
