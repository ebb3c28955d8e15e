"""Generators and critics: MLPs for 2-D data, DCGAN-style and ResNet networks for images.

Critics never use batch norm: the gradient penalty is per sample, and batch norm mixes the samples
of a batch (WGAN-GP §4). The ResNet networks reuse genlab's VQGAN-style blocks (GroupNorm, per
sample, and SiLU, smooth for the double backward of the penalty). Generators end in ``tanh`` for
images in ``[-1, 1]`` and are linear for 2-D points.

    G = build_generator(NetworkConfig(arch="dcgan", data_shape=(1, 16, 16)))
    D = build_critic(NetworkConfig(arch="dcgan", data_shape=(1, 16, 16)))
    scores = D(G(torch.randn(8, G.latent_dim)))          # (8,)
    G.save_pretrained("my_generator"); G = Generator.from_pretrained("my_generator")
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from genlab.io import PretrainedMixin, known_fields
from genlab.nn.conv import Downsample, ResnetBlock, Upsample, group_norm
from genlab.utils import check_choice, check_positive_int

GENERATOR_KIND = "GANGenerator"
CRITIC_KIND = "GANCritic"
ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU, "relu": nn.ReLU, "softplus": nn.Softplus}


@dataclass
class NetworkConfig:
    """Architecture of a generator/critic pair (fields shared with ``scripts/train_gan.py``).

    ``data_shape``: ``[2]`` for 2-D points, ``[C, H, W]`` for images (H = W, a power of two >= 8).
    """

    arch: str = "mlp"  # mlp | dcgan | resnet
    data_shape: list[int] = field(default_factory=lambda: [2])
    latent_dim: int = 2
    width: int = 256  # MLP hidden units, or the base channel count of the image networks
    depth: int = 3  # MLP hidden layers
    activation: str = "leaky_relu"  # MLP activation: leaky_relu | silu | relu | softplus

    def validate_network(self) -> None:
        check_choice("arch", self.arch, list(ARCHS))
        check_choice("activation", self.activation, list(ACTIVATIONS))
        for key in ("latent_dim", "width", "depth"):
            check_positive_int(key, getattr(self, key))
        shape = list(self.data_shape)
        if self.arch == "mlp":
            if len(shape) != 1 or shape[0] < 1:
                raise ValueError(f"data_shape={shape} does not fit arch='mlp', which takes flat points like [2]")
        else:
            if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 8 or shape[1] & (shape[1] - 1):
                raise ValueError(f"data_shape={shape} does not fit arch={self.arch!r}: expected [C, S, S] with S a "
                                 "power of two >= 8")


def network_config_dict(cfg) -> dict:
    """The :class:`NetworkConfig` fields of ``cfg`` (a script config that inherits them)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(NetworkConfig)}


class _Network(PretrainedMixin, nn.Module):
    """What generators and critics share: the :class:`NetworkConfig` that rebuilds them (``self.cfg``),
    ``save_pretrained(folder)`` and ``from_pretrained(folder_or_file)``."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.cfg = NetworkConfig(**network_config_dict(cfg))

    def pretrained_config(self) -> dict:
        return {**network_config_dict(self.cfg), "data_shape": list(self.cfg.data_shape)}


class Generator(_Network):
    """Base class of the generators: ``forward(z (B, latent_dim)) -> (B, *data_shape)``."""

    weights_kind = GENERATOR_KIND

    @classmethod
    def from_config(cls, config: dict) -> "Generator":
        """A fresh generator from a stored config (keys that are not :class:`NetworkConfig` fields are ignored)."""
        return build_generator(NetworkConfig(**known_fields(config, NetworkConfig)))


class Critic(_Network):
    """Base class of the critics: ``forward(x (B, *data_shape)) -> (B,)`` scores."""

    weights_kind = CRITIC_KIND

    @classmethod
    def from_config(cls, config: dict) -> "Critic":
        """A fresh critic from a stored config (keys that are not :class:`NetworkConfig` fields are ignored)."""
        return build_critic(NetworkConfig(**known_fields(config, NetworkConfig)))


def load_generator(path: str, map_location: str | torch.device = "cpu") -> tuple[Generator, dict]:
    """``(generator, stored config)`` of a ``save_pretrained`` folder or ``weights/generator.safetensors`` of a
    ``train_gan.py`` run; the config also holds what the run stored beside the network (``dataset``, ...)."""
    from genlab.io import resolve_pretrained

    generator = Generator.from_pretrained(path, map_location)
    config = resolve_pretrained(path)[1]
    config.pop("_genlab_kind")
    return generator, config


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPGenerator(Generator):
    """``z (B, latent_dim) -> x (B, D)``: ``depth`` hidden layers of ``width`` units, linear output."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__(cfg)
        self.latent_dim = cfg.latent_dim
        self.net = _mlp([cfg.latent_dim, *[cfg.width] * cfg.depth, cfg.data_shape[0]], cfg.activation)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class MLPCritic(Critic):
    """``x (B, D) -> (B,)`` scores: ``depth`` hidden layers of ``width`` units, no normalisation."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__(cfg)
        self.net = _mlp([cfg.data_shape[0], *[cfg.width] * cfg.depth, 1], cfg.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)[:, 0]


def _stages(size: int) -> int:
    return int(math.log2(size)) - 2  # 4 x 4 -> size x size


class DCGANGenerator(Generator):
    """DCGAN (Radford et al. 2016): ``z -> (4w·2^k, 4, 4) ->`` [ConvTranspose 4x4 s2, BN, ReLU] ``-> tanh``.

    ``z (B, latent_dim) -> (B, C, S, S)``; channels halve at each doubling of the resolution.
    """

    def __init__(self, cfg: NetworkConfig):
        super().__init__(cfg)
        channels, size = cfg.data_shape[0], cfg.data_shape[1]
        self.latent_dim, n = cfg.latent_dim, _stages(size)
        widths = [cfg.width * 2 ** (n - i) for i in range(n + 1)]  # e.g. [4w, 2w, w] for 16 x 16
        self.stem = nn.Sequential(nn.Linear(cfg.latent_dim, widths[0] * 16), nn.Unflatten(1, (widths[0], 4, 4)),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.body = nn.Sequential(*[nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.ReLU())
                                    for a, b in zip(widths[:-1], widths[1:])])
        self.head = nn.Sequential(nn.Conv2d(widths[-1], channels, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.body(self.stem(z)))  # (B, C, S, S)


class DCGANCritic(Critic):
    """DCGAN critic without batch norm: [Conv 4x4 s2, LeakyReLU] down to 4 x 4, then linear; ``(B, C, S, S) -> (B,)``."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__(cfg)
        channels, size = cfg.data_shape[0], cfg.data_shape[1]
        n = _stages(size)
        widths = [cfg.width * 2 ** i for i in range(n + 1)]  # [w, 2w, 4w] for 16 x 16
        self.stem = nn.Sequential(nn.Conv2d(channels, widths[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*[nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2))
                                    for a, b in zip(widths[:-1], widths[1:])])
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * 16, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))[:, 0]


class ResNetGenerator(Generator):
    """``z -> (w, 4, 4) ->`` [ResnetBlock, Upsample] per doubling ``->`` GroupNorm, SiLU, conv, tanh."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__(cfg)
        channels, size, w = cfg.data_shape[0], cfg.data_shape[1], cfg.width
        self.latent_dim = cfg.latent_dim
        self.stem = nn.Sequential(nn.Linear(cfg.latent_dim, w * 16), nn.Unflatten(1, (w, 4, 4)))
        self.body = nn.Sequential(*[nn.Sequential(ResnetBlock(w), Upsample(w)) for _ in range(_stages(size))])
        self.head = nn.Sequential(ResnetBlock(w), group_norm(w), nn.SiLU(), nn.Conv2d(w, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.body(self.stem(z)))  # (B, C, S, S)


class ResNetCritic(Critic):
    """conv ``->`` [ResnetBlock, Downsample] down to 4 x 4 ``->`` ResnetBlock, SiLU, mean pool, linear; ``(B,)``.

    GroupNorm inside the blocks normalises each sample on its own, so the gradient penalty stays per sample.
    """

    def __init__(self, cfg: NetworkConfig):
        super().__init__(cfg)
        channels, size, w = cfg.data_shape[0], cfg.data_shape[1], cfg.width
        self.stem = nn.Conv2d(channels, w, 3, padding=1)
        self.body = nn.Sequential(*[nn.Sequential(ResnetBlock(w), Downsample(w)) for _ in range(_stages(size))])
        self.head = nn.Sequential(ResnetBlock(w), nn.SiLU())
        self.linear = nn.Linear(w, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(self.body(self.stem(x)))  # (B, w, 4, 4)
        return self.linear(h.mean((2, 3)))[:, 0]


ARCHS = {"mlp": (MLPGenerator, MLPCritic), "dcgan": (DCGANGenerator, DCGANCritic), "resnet": (ResNetGenerator, ResNetCritic)}


def build_generator(cfg: NetworkConfig) -> Generator:
    """The generator of ``cfg.arch``; ``forward(z (B, latent_dim)) -> (B, *data_shape)``."""
    cfg.validate_network()
    return ARCHS[cfg.arch][0](cfg)


def build_critic(cfg: NetworkConfig) -> Critic:
    """The critic of ``cfg.arch``; ``forward(x (B, *data_shape)) -> (B,)``."""
    cfg.validate_network()
    return ARCHS[cfg.arch][1](cfg)


def sample_latent(n: int, latent_dim: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> Tensor:
    """Standard normal latents ``(n, latent_dim)``; drawn on the CPU when a ``generator`` is given
    (reproducible across devices), then moved to ``device``."""
    if generator is not None:
        return torch.randn(n, latent_dim, generator=generator).to(device)
    return torch.randn(n, latent_dim, device=device)


__all__ = ["ARCHS", "CRITIC_KIND", "Critic", "DCGANCritic", "DCGANGenerator", "GENERATOR_KIND", "Generator", "MLPCritic",
           "MLPGenerator", "NetworkConfig", "ResNetCritic", "ResNetGenerator", "build_critic", "build_generator",
           "load_generator", "network_config_dict", "sample_latent"]
