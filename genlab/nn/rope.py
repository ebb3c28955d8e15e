"""Rotary position embeddings: RoPE-1D, RoPE-2D and multi-axis positions (RoFormer, Su et al. 2021).

A vector at position ``m`` is rotated pair by pair: pair ``i`` by the angle ``m * theta_i`` with
``theta_i = base^(-2i / d)``, so ``(R_m q) . (R_n k)`` depends on ``n - m`` only (RoFormer Eq. 16).

* **Pairing** (which dimensions form a pair): ``"interleaved"`` ``(x0, x1), (x2, x3), ...``
  (RoFormer, Meta Llama, torchtune, rotary-embedding-torch; genlab's default) or ``"half"``
  ``(x_i, x_{i + d/2})`` (HF ``rotate_half``, GPT-NeoX). They are the same function up to the fixed
  permutation :func:`half_split_permutation`.
* **Axes**: positions may have several axes ``(n_axes, ..., T)`` (e.g. image rows and columns);
  ``axis_of_pair[i]`` says which axis pair ``i`` reads. The default *alternating* allocation
  (pair ``i`` reads axis ``i mod n_axes``, Su's RoPE-Tie post 10352) keeps the 1-D ``theta_i``, so a
  position ``(n, n)`` is bit-identical to RoPE-1D at ``n``. ``"blocked"`` gives each axis a
  contiguous block of pairs with the same 1-D ``theta_i`` (Qwen M-RoPE sections); ``"axial"`` gives
  each axis a block with its own schedule over the block width (Su 8397's first RoPE-2D,
  rotary-embedding-torch's ``get_axial_freqs``), where ``(n, n)`` is *not* RoPE-1D at ``n``.
* Angles, cos and sin are computed in float32 with autocast disabled (bf16 is exact for integers
  only up to 256), then cast to the input's dtype.
* Length extrapolation: NTK-aware base scaling ``base * kappa^(d / (d - 2))`` with
  ``kappa = L_test / L_train`` (Su 9675), and :func:`log_n_scale` for the attention logits.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genlab.utils import check_choice


def rope_frequencies(dim: int, base: float = 10000.0, ntk_factor: float = 1.0) -> Tensor:
    """``theta_i = base'^(-2i/dim)`` for ``i < dim/2`` in float32; ``base' = base * ntk^(dim/(dim-2))``."""
    if dim < 2 or dim % 2:
        raise ValueError(f"rotary dim={dim} must be a positive even integer")
    if ntk_factor < 1:
        raise ValueError(f"ntk_factor={ntk_factor} must be >= 1 (the ratio of test to train length)")
    base = base * ntk_factor ** (dim / (dim - 2)) if ntk_factor != 1 else base
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)).float()


def half_split_permutation(dim: int) -> Tensor:
    """``perm`` with ``rope_half(x[..., perm]) == rope_interleaved(x)[..., perm]``: ``[0, 2, ..., 1, 3, ...]``."""
    return torch.cat([torch.arange(0, dim, 2), torch.arange(1, dim, 2)])


ALLOCATIONS = ["alternating", "blocked", "axial"]


def axis_allocation(dim: int, n_axes: int, allocation: str = "alternating") -> Tensor:
    """Which position axis each of the ``dim/2`` pairs reads (RoPE-2D allocations, Su kexue.fm 8397 and 10040).

    ``alternating``: pair ``i`` reads axis ``i mod n_axes`` (Su 10352); ``blocked`` and ``axial``:
    contiguous blocks of pairs per axis (Qwen M-RoPE sections; rotary-embedding-torch's axial layout).
    """
    check_choice("allocation", allocation, ALLOCATIONS)
    pairs = dim // 2
    if allocation == "alternating":
        return torch.arange(pairs) % n_axes
    return torch.arange(pairs) * n_axes // pairs


def pair_frequencies(dim: int, n_axes: int, allocation: str, base: float = 10000.0, ntk_factor: float = 1.0) -> Tensor:
    """``theta`` of every pair ``(dim/2,)`` float32 for an allocation.

    ``alternating`` and ``blocked`` keep the 1-D schedule ``theta_i = base^(-2i/dim)``; ``axial``
    gives each axis's block of ``dim / n_axes`` features its own schedule over that block width
    (Su 8397's half/half RoPE-2D, rotary-embedding-torch's ``get_axial_freqs``), so position
    ``(n, n)`` is *not* RoPE-1D at ``n`` there.
    """
    if allocation != "axial" or n_axes == 1:
        return rope_frequencies(dim, base, ntk_factor)
    if dim % (2 * n_axes):
        raise ValueError(f"allocation='axial' needs dim={dim} divisible by 2 * n_axes = {2 * n_axes}")
    return rope_frequencies(dim // n_axes, base, ntk_factor).repeat(n_axes)


def log_n_scale(n: Tensor | int, train_len: int = 512, floor: int = 16) -> Tensor:
    """Entropy-invariant logit factor ``log(max(n, floor)) / log(train_len)`` (Su 8823).

    ``n`` is the number of keys a query may attend to; the factor is 1 at ``n = train_len``.
    """
    n = torch.as_tensor(n, dtype=torch.float32)
    return n.clamp_min(floor).log() / math.log(train_len)


def rotate(x: Tensor, cos: Tensor, sin: Tensor, pairing: str = "interleaved") -> Tensor:
    """Apply the rotation with per-pair ``cos``/``sin`` ``(..., T, d/2)`` to ``x (..., T, d)``."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if pairing == "interleaved":
        x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)  # (..., T, d/2) each
        return torch.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], -1).flatten(-2)
    half = x.shape[-1] // 2
    x0, x1 = x[..., :half], x[..., half:]
    return torch.cat([x0 * cos - x1 * sin, x1 * cos + x0 * sin], -1)


class RotaryEmbedding(nn.Module):
    """Rotary embedding over ``dim`` features with one or more position axes.

    Args:
        dim: rotated features (even); ``x[..., :dim]`` is rotated, the rest passes through
            (partial rotary).
        base: ``theta_i = base^(-2i/dim)``.
        n_axes: position axes (1 for text, 2 for images and RoPE-Tie streams).
        allocation: ``"alternating"`` (default), ``"blocked"`` or ``"axial"``; see the module docstring.
        pairing: ``"interleaved"`` (default) or ``"half"`` (for checkpoints that need it).
        ntk_factor: NTK-aware base scaling for ``L_test / L_train`` > 1.

    Call ``rope(x, positions)`` with ``x (..., T, d)``. Positions (integers or floats) are
    ``(T,)`` or ``(B, T)`` for one axis and ``(n_axes, T)`` or ``(n_axes, B, T)`` for several;
    ``positions=None`` means ``offset .. offset + T - 1`` on every axis. With ``(B, T)``
    positions and ``x (B, H, T, d)`` the heads broadcast. Given positions are absolute: ``offset``
    applies only when ``positions`` is None.
    """

    def __init__(self, dim: int, base: float = 10000.0, n_axes: int = 1, allocation: str = "alternating",
                 pairing: str = "interleaved", ntk_factor: float = 1.0):
        super().__init__()
        check_choice("pairing", pairing, ["interleaved", "half"])
        if isinstance(n_axes, bool) or not isinstance(n_axes, int) or n_axes < 1:
            raise ValueError(f"n_axes={n_axes!r} must be an integer >= 1")
        self.dim, self.n_axes, self.pairing, self.allocation = dim, n_axes, pairing, allocation
        self.register_buffer("inv_freq", pair_frequencies(dim, n_axes, allocation, base, ntk_factor), persistent=False)
        self.register_buffer("axis_of_pair", axis_allocation(dim, n_axes, allocation), persistent=False)
        self._cache: tuple | None = None  # (key, cos, sin) of the last call

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_axes={self.n_axes}, allocation={self.allocation!r}, pairing={self.pairing!r}"

    def _apply(self, fn, recurse=True):
        inv_freq = self.inv_freq
        super()._apply(fn, recurse)
        self.inv_freq = inv_freq.to(device=self.inv_freq.device)  # stays float32 under .to(bf16)
        self._cache = None
        return self

    def _check_positions(self, positions: Tensor) -> Tensor:
        if self.n_axes == 1:
            if positions.ndim == 3 and positions.shape[0] == 1:
                positions = positions[0]
            if positions.ndim not in (1, 2):
                raise ValueError(f"positions for n_axes=1 must be (T,), (B, T) or (1, B, T); got shape {tuple(positions.shape)}")
        elif positions.ndim not in (2, 3) or positions.shape[0] != self.n_axes:
            raise ValueError(f"positions must be (n_axes={self.n_axes}, T) or (n_axes, B, T); got shape {tuple(positions.shape)}")
        return positions

    def angles(self, positions: Tensor) -> Tensor:
        """Angles ``(..., T, dim/2)`` in float32 for positions ``(T,)``, ``(B, T)`` or ``(n_axes, ..., T)``.

        Computed with autocast disabled: bf16 positions or angles would round (bf16 is exact for
        integers only up to 256).
        """
        positions = self._check_positions(positions)
        with torch.autocast(device_type=positions.device.type, enabled=False):
            pos = positions.float()
            if self.n_axes == 1:
                return pos[..., None] * self.inv_freq
            per_pair = pos[self.axis_of_pair.to(pos.device)]  # (dim/2, ..., T)
            return per_pair.movedim(0, -1) * self.inv_freq

    def cos_sin(self, positions: Tensor | None, length: int, offset: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``cos, sin`` ``(..., T, dim/2)`` float32, cached for the last call.

        Every layer of a stack rotates queries and keys with the same positions, so one entry
        keyed by (length, offset, device, inference mode) or by the identity and version of the
        positions tensor saves recomputing them ``2 x depth`` times per forward.
        """
        mode = torch.is_inference_mode_enabled()
        if positions is not None and positions.is_inference():  # no version counter to key on
            a = self.angles(positions.to(device))
            return a.cos(), a.sin()
        if positions is None:
            key = ("range", int(length), int(offset), str(device), mode)
        else:
            key = ("tensor", id(positions), positions._version, str(device), mode)
        if self._cache is not None and self._cache[0] == key and (positions is None or self._cache[3] is positions):
            return self._cache[1], self._cache[2]
        if positions is None:
            pos = torch.arange(offset, offset + length, device=device)
            pos = pos.expand(self.n_axes, length) if self.n_axes > 1 else pos
        else:
            pos = positions.to(device)
        a = self.angles(pos)
        self._cache = (key, a.cos(), a.sin(), positions)
        return self._cache[1], self._cache[2]

    def forward(self, x: Tensor, positions: Tensor | None = None, offset: int = 0) -> Tensor:
        """Rotate ``x (..., T, d)`` with ``d >= dim``; returns the same shape and dtype."""
        if x.shape[-1] < self.dim:
            raise ValueError(f"input has {x.shape[-1]} features; RotaryEmbedding(dim={self.dim}) needs at least {self.dim}")
        if positions is not None and positions.shape[-1] != x.shape[-2]:
            raise ValueError(f"positions of shape {tuple(positions.shape)} do not match {x.shape[-2]} tokens of input {tuple(x.shape)}")
        cos, sin = self.cos_sin(positions, x.shape[-2], offset, x.device)
        if cos.ndim == 3 and x.ndim == 4:  # (B, T, d/2) positions for (B, H, T, d) heads
            cos, sin = cos[:, None], sin[:, None]
        if x.shape[-1] == self.dim:
            return rotate(x, cos, sin, self.pairing)
        return torch.cat([rotate(x[..., :self.dim], cos, sin, self.pairing), x[..., self.dim:]], -1)


def grid_positions(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Row and column positions ``(2, height * width)`` of a raster-ordered ``height x width`` grid."""
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    return torch.stack([rows, cols]).float()


__all__ = ["ALLOCATIONS", "RotaryEmbedding", "axis_allocation", "pair_frequencies", "grid_positions", "half_split_permutation", "log_n_scale",
           "rope_frequencies", "rotate"]
