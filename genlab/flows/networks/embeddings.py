"""Time and class embeddings shared by the velocity networks.

Times are genlab times ``t (B,)`` in ``[0, 1]`` (0 = source, 1 = data), embedded in float32 with
autocast off: the network sees ``t * 1000`` through sinusoidal features (Vaswani et al. 2017;
DiT's ``TimestepEmbedder``), the scale the usual diffusion embeddings are tuned for.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TIME_SCALE = 1000.0


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features ``(B, dim)`` of ``t * 1000`` for ``t (B,)``: ``[cos(t w_i), sin(t w_i)]``."""
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,); got {tuple(t.shape)}")
    half = dim // 2
    with torch.autocast(device_type=t.device.type, enabled=False):
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float()[:, None] * TIME_SCALE * freqs  # (B, half)
        emb = torch.cat([args.cos(), args.sin()], -1)
        return F.pad(emb, (0, dim % 2))


class TimeEmbedding(nn.Module):
    """``t (B,) -> (B, dim)``: sinusoidal features then a two-layer SiLU MLP (DiT, ADM)."""

    def __init__(self, dim: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_dim))


class LabelEmbedding(nn.Module):
    """Class labels ``(B,) -> (B, dim)`` with one extra *null* class (index ``num_classes``) for
    classifier-free guidance (Ho & Salimans 2022): training replaces labels by the null class with
    probability ``p_uncond`` (:func:`drop_labels`)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, labels: Tensor) -> Tensor:
        return self.table(labels)


def drop_labels(labels: Tensor, null_label: int, p_uncond: float, generator: torch.Generator | None = None) -> Tensor:
    """Replace each label by ``null_label`` with probability ``p_uncond`` (CFG training)."""
    if not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond={p_uncond!r} must be in [0, 1]")
    if p_uncond == 0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=generator.device if generator else labels.device)
    return torch.where(drop.to(labels.device) < p_uncond, torch.full_like(labels, null_label), labels)


__all__ = ["LabelEmbedding", "TIME_SCALE", "TimeEmbedding", "drop_labels", "timestep_embedding"]
