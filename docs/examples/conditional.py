"""A class-conditional GAN: generator(z, y) and discriminator(x, y), y the images' int64 class labels."""

import math

import torch
from torch import nn

from gbench import hookimpl
from gbench.plugins.registry import Architecture, Nets


class Generator(nn.Module):
    def __init__(self, latent_dim, num_classes, image_shape):
        super().__init__()
        self.embed = nn.Embedding(num_classes, 8)  # the label as 8 numbers, learned
        layers = [nn.Linear(latent_dim + 8, 128), nn.ReLU(), nn.Linear(128, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers, nn.Unflatten(1, tuple(image_shape)))

    def forward(self, z, y):
        return self.net(torch.cat([z, self.embed(y)], dim=1))


class Discriminator(nn.Module):
    def __init__(self, num_classes, image_shape):
        super().__init__()
        self.embed = nn.Embedding(num_classes, 8)
        self.net = nn.Sequential(nn.Linear(math.prod(image_shape) + 8, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))

    def forward(self, x, y):  # one logit per image, as an unconditional discriminator gives
        return self.net(torch.cat([x.flatten(1), self.embed(y)], dim=1))


def build(params, image_shape, num_classes):  # conditional: gbench passes the data's class count
    return Nets(Generator(32, num_classes, image_shape), Discriminator(num_classes, image_shape), latent_dim=32)


@hookimpl
def gbench_register_architectures(register):
    register(Architecture("label-mlp", build, description="an MLP GAN told each image's class", conditional=True))
