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
* Length extrapolation (``scaling``, blocks.md section 4), with ``s = factor = L_test / L_train``:
  ``"pi"`` position interpolation (every ``theta_i / s``); ``"ntk"`` NTK-aware base scaling
  ``base * s^(d / (d - 2))`` (Su 9675); ``"ntk_mixed"`` ``theta_m exp(-a m^b)``, ``m = 1..d/2``,
  ``a = ln(s) / (d/2)^b`` (Su 9706); ``"yarn"`` the ramp ``gamma_i`` over ``r_i = theta_i L_train / (2 pi)``
  between 1 and ``tau``, ``theta_i' = (gamma_i + (1 - gamma_i) / s) theta_i``, with queries and keys
  both times ``1 + 0.1 ln s`` (logits times its square); ``"ntk_dynamic"`` / ``"yarn_dynamic"`` the
  same with ``s = max(1, length / L_train)`` for the tokens so far (``offset + T``; cached keys keep
  the rotation they were stored with); ``"rerope"`` / ``"leaky_rerope"`` clip the relative position
  at a window (:mod:`genlab.nn.rerope`, applied by the attention layers). :func:`log_n_scale` scales
  the attention logits.
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


SCALINGS = ["none", "pi", "ntk", "ntk_dynamic", "ntk_mixed", "yarn", "yarn_dynamic", "rerope", "leaky_rerope"]


def scale_frequencies(theta: Tensor, scaling: str, factor: float, train_len: int = 512, mixed_b: float = 0.625,
                      yarn_tau: float = 32.0) -> Tensor:
    """``theta (P,)`` rescaled for ``factor = L_test / L_train`` by ``"pi"``, ``"ntk_mixed"`` or ``"yarn"``.

    ``"ntk"`` changes the base instead (:func:`rope_frequencies`); other scalings leave ``theta``.
    """
    if factor < 1:
        raise ValueError(f"factor={factor} must be >= 1 (the ratio of test to train length)")
    if factor == 1 or scaling not in ("pi", "ntk_mixed", "yarn", "yarn_dynamic"):
        return theta
    t = theta.double()
    if scaling == "pi":
        out = t / factor
    elif scaling == "ntk_mixed":
        m = torch.arange(1, len(t) + 1, dtype=torch.float64)
        out = t * torch.exp(-math.log(factor) / len(t) ** mixed_b * m ** mixed_b)
    else:
        r = t * train_len / (2 * math.pi)  # rotations over the training length
        gamma = ((r - 1) / (yarn_tau - 1)).clamp(0, 1)
        out = (gamma + (1 - gamma) / factor) * t
    return out.float()


def yarn_mscale(factor: float) -> float:
    """YaRN's factor on queries and keys, ``1 + 0.1 ln s`` (1 for ``s <= 1``): logits times its square."""
    return 1.0 + 0.1 * math.log(factor) if factor > 1 else 1.0


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
        ntk_factor: NTK-aware base scaling for ``L_test / L_train`` > 1 (the same as
            ``scaling="ntk", factor=ntk_factor``).
        scaling: a length-extrapolation method of :data:`SCALINGS` (module docstring).
        factor: ``L_test / L_train`` for the fixed scalings.
        train_len: ``L_train`` (YaRN's ramp, the dynamic scalings).
        mixed_b: NTK-mixed exponent ``b`` (1: NTK-fixed, 0: position interpolation; Su's best 0.625).
        yarn_tau: YaRN's ramp top ``tau`` (rotations over ``L_train``).
        rerope_window: ReRoPE's window ``w`` (``"rerope"``, ``"leaky_rerope"``).
        rerope_leak: Leaky ReRoPE's ``k``: relative positions past ``w`` advance by ``1/k``.

    Call ``rope(x, positions)`` with ``x (..., T, d)``. Positions (integers or floats) are
    ``(T,)`` or ``(B, T)`` for one axis and ``(n_axes, T)`` or ``(n_axes, B, T)`` for several;
    ``positions=None`` means ``offset .. offset + T - 1`` on every axis. With ``(B, T)``
    positions and ``x (B, H, T, d)`` the heads broadcast. Given positions are absolute: ``offset``
    applies only when ``positions`` is None.
    """

    def __init__(self, dim: int, base: float = 10000.0, n_axes: int = 1, allocation: str = "alternating",
                 pairing: str = "interleaved", ntk_factor: float = 1.0, scaling: str = "none", factor: float = 1.0,
                 train_len: int = 512, mixed_b: float = 0.625, yarn_tau: float = 32.0, rerope_window: int = 0,
                 rerope_leak: float = 16.0):
        super().__init__()
        check_choice("pairing", pairing, ["interleaved", "half"])
        check_choice("scaling", scaling, SCALINGS)
        if isinstance(n_axes, bool) or not isinstance(n_axes, int) or n_axes < 1:
            raise ValueError(f"n_axes={n_axes!r} must be an integer >= 1")
        if not factor >= 1:
            raise ValueError(f"factor={factor!r} must be >= 1 (the ratio of test to train length)")
        if train_len < 1 or yarn_tau <= 1 or not 0 <= mixed_b <= 1:
            raise ValueError(f"train_len={train_len} must be >= 1, yarn_tau={yarn_tau} > 1 and mixed_b={mixed_b} in [0, 1]")
        if scaling in ("rerope", "leaky_rerope") and (rerope_window < 1 or (scaling == "leaky_rerope" and not rerope_leak >= 1)):
            raise ValueError(f"scaling={scaling!r} needs rerope_window >= 1 (got {rerope_window}) and rerope_leak >= 1 "
                             f"(got {rerope_leak})")
        if allocation == "axial" and n_axes > 1 and scaling not in ("none", "pi", "ntk", "ntk_dynamic"):
            raise ValueError(f"scaling={scaling!r} assumes one frequency schedule; allocation='axial' has one per axis")
        self.dim, self.n_axes, self.pairing, self.allocation = dim, n_axes, pairing, allocation
        self.base, self.scaling, self.train_len, self.mixed_b, self.yarn_tau = base, scaling, train_len, mixed_b, yarn_tau
        self.factor = float(ntk_factor if scaling == "none" and ntk_factor != 1 else factor)
        if scaling == "none" and ntk_factor != 1:
            self.scaling = scaling = "ntk"
        self.rerope_window = rerope_window if scaling in ("rerope", "leaky_rerope") else 0
        self.rerope_leak = float(rerope_leak) if scaling == "leaky_rerope" else None
        self.mscale = yarn_mscale(self.factor) if scaling == "yarn" else 1.0
        fixed = self.factor if scaling in ("ntk", "pi", "ntk_mixed", "yarn") else 1.0
        inv_freq = pair_frequencies(dim, n_axes, allocation, base, fixed if scaling == "ntk" else 1.0)
        inv_freq = scale_frequencies(inv_freq, scaling, fixed, train_len, mixed_b, yarn_tau)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.register_buffer("axis_of_pair", axis_allocation(dim, n_axes, allocation), persistent=False)
        self._cache: tuple | None = None  # (key, cos, sin) of the last call

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, n_axes={self.n_axes}, allocation={self.allocation!r}, pairing={self.pairing!r}, "
                f"scaling={self.scaling!r}")

    def dynamic(self, length: int) -> tuple[Tensor, float] | None:
        """``(inv_freq, mscale)`` of a dynamic scaling for ``length`` tokens so far (None: not dynamic or ``length <= L_train``)."""
        if self.scaling not in ("ntk_dynamic", "yarn_dynamic") or length <= self.train_len:
            return None
        s = length / self.train_len
        if self.scaling == "ntk_dynamic":
            inv = pair_frequencies(self.dim, self.n_axes, self.allocation, self.base, s)
            return inv.to(self.inv_freq.device), 1.0
        inv = pair_frequencies(self.dim, self.n_axes, self.allocation, self.base)
        return scale_frequencies(inv, "yarn", s, self.train_len, self.mixed_b, self.yarn_tau).to(self.inv_freq.device), yarn_mscale(s)

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

    def angles(self, positions: Tensor, inv_freq: Tensor | None = None) -> Tensor:
        """Angles ``(..., T, dim/2)`` in float32 for positions ``(T,)``, ``(B, T)`` or ``(n_axes, ..., T)``.

        Computed with autocast disabled: bf16 positions or angles would round (bf16 is exact for
        integers only up to 256).
        """
        positions = self._check_positions(positions)
        inv_freq = self.inv_freq if inv_freq is None else inv_freq
        with torch.autocast(device_type=positions.device.type, enabled=False):
            pos = positions.float()
            if self.n_axes == 1:
                return pos[..., None] * inv_freq
            per_pair = pos[self.axis_of_pair.to(pos.device)]  # (dim/2, ..., T)
            return per_pair.movedim(0, -1) * inv_freq

    def cos_sin(self, positions: Tensor | None, length: int, offset: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``cos, sin`` ``(..., T, dim/2)`` float32, cached for the last call.

        Every layer of a stack rotates queries and keys with the same positions, so one entry
        keyed by (length, offset, device, inference mode) or by the identity and version of the
        positions tensor saves recomputing them ``2 x depth`` times per forward.
        """
        mode = torch.is_inference_mode_enabled()
        dyn = self.dynamic(offset + length)
        inv_freq, mscale = dyn if dyn is not None else (None, self.mscale)
        if positions is not None and positions.is_inference():  # no version counter to key on
            a = self.angles(positions.to(device), inv_freq)
            return a.cos() * mscale, a.sin() * mscale
        if positions is None:
            key = ("range", int(length), int(offset), str(device), mode, mscale)
        else:
            key = ("tensor", id(positions), positions._version, str(device), mode, mscale, offset + length)
        if self._cache is not None and self._cache[0] == key and (positions is None or self._cache[3] is positions):
            return self._cache[1], self._cache[2]
        if positions is None:
            pos = torch.arange(offset, offset + length, device=device)
            pos = pos.expand(self.n_axes, length) if self.n_axes > 1 else pos
        else:
            pos = positions.to(device)
        a = self.angles(pos, inv_freq)
        self._cache = (key, a.cos() * mscale, a.sin() * mscale, positions)
        return self._cache[1], self._cache[2]

    def rotate_at(self, x: Tensor, positions: Tensor) -> Tensor:
        """Rotate ``x (..., T, d)`` at ``positions`` with the static frequencies, uncached (ReRoPE's rotations)."""
        a = self.angles(positions)
        cos, sin = a.cos(), a.sin()
        if cos.ndim == 3 and x.ndim == 4:
            cos, sin = cos[:, None], sin[:, None]
        if x.shape[-1] == self.dim:
            return rotate(x, cos, sin, self.pairing)
        return torch.cat([rotate(x[..., :self.dim], cos, sin, self.pairing), x[..., self.dim:]], -1)

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


__all__ = ["ALLOCATIONS", "SCALINGS", "RotaryEmbedding", "scale_frequencies", "yarn_mscale", "axis_allocation", "pair_frequencies", "grid_positions", "half_split_permutation", "log_n_scale",
           "rope_frequencies", "rotate"]
