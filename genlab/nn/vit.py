"""Vision Transformer encoder and decoder with RoPE-2D patch positions (ViT, Dosovitskiy et al. 2021;
ViT-VQGAN, Yu et al. 2022; RoPE-2D, Su 8397 / 10352).

An image ``(B, C, H, W)`` is cut into ``p x p`` patches, each a token; a bidirectional
:class:`~genlab.nn.transformer.Transformer` mixes them with 2-axis rotary positions (row, column)
instead of learned absolute embeddings, so the grid size may change at test time. The decoder
maps tokens back to ``p x p`` pixel patches.

    enc = ViTEncoder(3, 4, patch=4, dim=128, depth=4, heads=4)    # (B, 3, 32, 32) -> (B, 4, 8, 8)
    dec = ViTDecoder(3, 4, patch=4, dim=128, depth=4, heads=4)    # (B, 4, 8, 8) -> (B, 3, 32, 32)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nn.rope import RotaryEmbedding, grid_positions
from genlab.nn.transformer import Transformer
from genlab.utils import check_positive_int


class PatchEmbed(nn.Module):
    """``(B, C, H, W) -> tokens (B, h*w, D)`` in raster order and their positions ``(2, h*w)`` (rows, columns)."""

    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = check_positive_int("patch", patch)
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.shape[-1] % self.patch or images.shape[-2] % self.patch:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not divisible by patch={self.patch}")
        x = self.proj(images)  # (B, D, h, w)
        return x.flatten(2).transpose(1, 2), grid_positions(x.shape[-2], x.shape[-1], x.device)


def _transformer(dim: int, depth: int, heads: int, **kwargs) -> Transformer:
    head_dim = kwargs.get("head_dim") or dim // heads
    rot_dim = kwargs.get("qk_dim", 128) if kwargs.get("mixer") == "gau" else head_dim
    return Transformer(dim, depth, heads, rope=RotaryEmbedding(rot_dim, n_axes=2), **kwargs)


class ViTEncoder(nn.Module):
    """``(B, C, H, W) -> (B, out_channels, H/p, W/p)``: patch embedding, Transformer, linear to ``out_channels``.

    ``**kwargs`` go to :class:`~genlab.nn.transformer.Transformer` (``mixer``, ``norm``,
    ``mlp_ratio``, ``dropout``, mixer arguments).
    """

    def __init__(self, in_channels: int, out_channels: int, patch: int, dim: int = 128, depth: int = 4, heads: int = 4,
                 **kwargs):
        super().__init__()
        self.embed = PatchEmbed(in_channels, dim, patch)
        self.transformer = _transformer(dim, depth, heads, **kwargs)
        self.out = nn.Linear(dim, out_channels)

    def forward(self, images: Tensor) -> Tensor:
        tokens, positions = self.embed(images)  # (B, h*w, D), (2, h*w)
        z = self.out(self.transformer(tokens, positions))  # (B, h*w, out)
        h, w = images.shape[-2] // self.embed.patch, images.shape[-1] // self.embed.patch
        return z.transpose(1, 2).unflatten(2, (h, w))  # (B, out, h, w)


class ViTDecoder(nn.Module):
    """``(B, in_channels, h, w) -> (B, out_channels, h*p, w*p)``: linear to ``dim``, Transformer, pixel patches."""

    def __init__(self, out_channels: int, in_channels: int, patch: int, dim: int = 128, depth: int = 4, heads: int = 4,
                 **kwargs):
        super().__init__()
        self.patch = check_positive_int("patch", patch)
        self.inp = nn.Linear(in_channels, dim)
        self.transformer = _transformer(dim, depth, heads, **kwargs)
        self.out = nn.Linear(dim, out_channels * patch * patch)

    def forward(self, z: Tensor) -> Tensor:
        b, _, h, w = z.shape
        x = self.inp(z.flatten(2).transpose(1, 2))  # (B, h*w, D)
        x = self.out(self.transformer(x, grid_positions(h, w, z.device)))  # (B, h*w, C*p*p)
        return F.pixel_shuffle(x.transpose(1, 2).reshape(b, -1, h, w), self.patch)  # (B, C, h*p, w*p)


__all__ = ["PatchEmbed", "ViTDecoder", "ViTEncoder"]
