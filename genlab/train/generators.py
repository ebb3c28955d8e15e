"""Sampling a GAN generator saved by ``scripts/train_gan.py``: what ``sample_gan.py`` and ``compare_gans.py`` share.

    generator, config = load_generator("runs/gan/weights/generator.safetensors")   # genlab.gans.load_generator
    x = sample_generator(generator, 2500, config["latent_dim"], seed=0)           # (2500, *data_shape)
"""

from __future__ import annotations

import torch

from genlab.gans import load_generator


@torch.no_grad()
def sample_generator(generator: torch.nn.Module, num: int, latent_dim: int, seed: int, batch_size: int = 512) -> torch.Tensor:
    """``num`` samples ``(num, *data_shape)`` (float32, CPU) from latents drawn by a generator seeded with ``seed``."""
    was_training = generator.training
    generator.eval()
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(num, latent_dim, generator=g)
    out = torch.cat([generator(chunk).float() for chunk in z.split(batch_size)])
    generator.train(was_training)
    return out


__all__ = ["load_generator", "sample_generator"]
