"""Loading and sampling a GAN generator saved by ``scripts/train_gan.py`` (``weights/generator.safetensors``):
what ``sample_gan.py`` and ``compare_gans.py`` share.

    generator, config = load_generator("runs/gan/weights/generator.safetensors")
    x = sample_generator(generator, 2500, config["latent_dim"], seed=0)   # (2500, *data_shape)
"""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.gans import GENERATOR_KIND, NetworkConfig, build_generator
from genlab.gans.networks import network_config_dict
from genlab.train.io import load_weights, read_weights_metadata


def load_generator(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The generator stored at ``path`` (a ``GANGenerator`` weights file, in eval mode) and its stored config."""
    path = Path(path)
    meta = read_weights_metadata(path)
    if meta["kind"] != GENERATOR_KIND:
        raise ValueError(f"weights file {str(path)!r} holds a {meta['kind']!r}, not a {GENERATOR_KIND!r}; pass "
                         "weights/generator.safetensors of a train_gan.py run")
    config = meta["config"]
    fields = network_config_dict(NetworkConfig())
    generator = build_generator(NetworkConfig(**{k: config[k] for k in fields if k in config}))
    load_weights(generator, path, GENERATOR_KIND)
    return generator.eval(), config


@torch.no_grad()
def sample_generator(generator: torch.nn.Module, num: int, latent_dim: int, seed: int, batch_size: int = 512) -> torch.Tensor:
    """``num`` samples ``(num, *data_shape)`` (float32, CPU) from latents drawn by a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(num, latent_dim, generator=g)
    return torch.cat([generator(chunk).float() for chunk in z.split(batch_size)])


__all__ = ["load_generator", "sample_generator"]
