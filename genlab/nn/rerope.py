"""ReRoPE and Leaky ReRoPE (Su, kexue.fm 9708; bojone/rerope): attention with clipped relative positions.

The relative position ``Delta = i - j`` of query ``i`` and key ``j`` becomes ``rho(Delta) = Delta`` inside
the window (``Delta < w``) and ``w`` (ReRoPE) or ``w + (Delta - w) / k`` (Leaky ReRoPE) outside it,
so no query ever sees a relative position beyond what training showed. Two score matrices:

* ``S1 = (R_i q_i) . (R_j k_j)``: ordinary RoPE, taken where ``Delta < w``;
* ``S2 = (R_w q_i) . k_j`` with unrotated keys (Leaky: ``(R_{(i - w)/k + w} q_i) . (R_{j/k} k_j)``),
  taken elsewhere;

then mask and normalise in float32. The KV cache stores **pre-RoPE** keys with their positions,
so decoding one token computes exactly the row prefill computes (the cost: every step rotates
the cached keys again; stock flash attention does not apply).

Positions are those of the rotary embedding (``(T,)``, ``(B, T)`` or ``(n_axes, [B,] T)``); the
window is tested on the first axis (text in a RoPE-Tie stream sits at ``(n, n)``, where this is the
token distance).

Shapes: ``q (B, H, T, d)``, ``k, v (B, H, S, d)`` before any rotation; logits ``(B, H, T, S)`` float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.nn.attention import KVCache, attention_mask
from genlab.nn.rope import RotaryEmbedding, log_n_scale


def canonical_positions(rope: RotaryEmbedding, positions: Tensor | None, batch: int, length: int, offset: int,
                        device: torch.device) -> Tensor:
    """Float positions ``(B, T)`` (one axis) or ``(n_axes, B, T)``; None means ``offset .. offset + T - 1``."""
    if positions is None:
        pos = torch.arange(offset, offset + length, device=device, dtype=torch.float32)[None]
        pos = pos.expand(rope.n_axes, 1, length) if rope.n_axes > 1 else pos
    else:
        pos = positions.to(device=device, dtype=torch.float32)
        if rope.n_axes == 1 and pos.ndim == 3:
            pos = pos[0]
        if rope.n_axes == 1 and pos.ndim == 1:
            pos = pos[None]
        if rope.n_axes > 1 and pos.ndim == 2:
            pos = pos[:, None]
    return pos.expand(*pos.shape[:-2], batch, length)


def rerope_logits(rope: RotaryEmbedding, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor) -> Tensor:
    """Unscaled scores ``q . k`` ``(B, H, T, S)`` float32 at relative positions ``rho(i - j)``.

    ``q_pos (B, T)`` / ``k_pos (B, S)`` (or with a leading axis of ``n_axes``) from
    :func:`canonical_positions`; ``rope.rerope_window`` is ``w`` and ``rope.rerope_leak`` is ``k``
    (None for ReRoPE).
    """
    w, leak = rope.rerope_window, rope.rerope_leak
    dtype = torch.promote_types(q.dtype, torch.float32)  # float32 at least (float64 stays)
    q, k = q.to(dtype), k.to(dtype)
    s1 = rope.rotate_at(q, q_pos) @ rope.rotate_at(k, k_pos).transpose(-1, -2)
    if leak is None:
        s2 = rope.rotate_at(q, torch.full_like(q_pos, float(w))) @ k.transpose(-1, -2)
    else:
        s2 = rope.rotate_at(q, (q_pos - w) / leak + w) @ rope.rotate_at(k, k_pos / leak).transpose(-1, -2)
    qa, ka = (q_pos[0], k_pos[0]) if rope.n_axes > 1 else (q_pos, k_pos)
    near = (qa[:, :, None] - ka[:, None, :]) < w  # (B, T, S)
    return torch.where(near[:, None], s1, s2)


def normalize_scores(logits: Tensor, mask: Tensor | None, scale: float, normalization: str = "softmax",
                     log_n_train_len: int | None = None, log_n_floor: int = 16) -> Tensor:
    """Attention weights ``(B, H, T, S)`` float32 from unscaled ``logits``: softmax of ``scale * logits``
    (times the log-n factor of each row's valid keys when ``log_n_train_len``), or ``relu(scale * logits)^2 / n``.

    Rows with no valid key get zero weights (never NaN).
    """
    n = mask.sum(-1, keepdim=True) if mask is not None else torch.full_like(logits[..., :1], logits.shape[-1])
    logits = logits * scale
    if normalization == "relu2":
        a = F.relu(logits).square() / n.clamp_min(1)
        return a.masked_fill(~mask, 0.0) if mask is not None else a
    if log_n_train_len is not None:
        logits = logits * log_n_scale(n, log_n_train_len, log_n_floor)
    if mask is None:
        return logits.softmax(-1)
    empty = ~mask.any(-1, keepdim=True)
    a = logits.masked_fill(~(mask | empty), float("-inf")).softmax(-1)
    return a.masked_fill(empty, 0.0)


def rerope_attention(rope: RotaryEmbedding, q: Tensor, k: Tensor, v: Tensor, positions: Tensor | None,
                     key_padding_mask: Tensor | None, causal: bool, cache: KVCache | None, scale: float,
                     normalization: str = "softmax", log_n_train_len: int | None = None, log_n_floor: int = 16,
                     dropout: float = 0.0) -> Tensor:
    """Attention output ``(B, H, T, d_v)`` with ReRoPE for **unrotated** ``q (B, H, T, d)``, ``k, v (B, H, T, .)``.

    With a ``cache``, ``k``/``v`` of the new tokens are appended (pre-RoPE, with their positions in
    ``cache.key_positions``) and every cached key is scored again; ``key_padding_mask (B, S)`` covers
    all keys. ``positions`` default to ``cache.length + 0 .. T - 1``.
    """
    b, _, t, _ = q.shape
    offset = cache.length if cache is not None else 0
    q_pos = canonical_positions(rope, positions, b, t, offset, q.device)
    k_pos = q_pos
    if cache is not None:
        old = getattr(cache, "key_positions", None)
        if old is None and cache.length:
            raise ValueError("this cache holds keys without positions; a ReRoPE layer needs a cache it filled itself")
        k_pos = q_pos if old is None else torch.cat([old.expand(*old.shape[:-2], b, old.shape[-1]), q_pos], -1)
        cache.key_positions = k_pos
        k, v = cache.update(k, v)
    mask = attention_mask(b, t, k.shape[-2], offset, causal, key_padding_mask, q.device)
    a = normalize_scores(rerope_logits(rope, q, k, q_pos, k_pos), mask, scale, normalization, log_n_train_len, log_n_floor)
    return F.dropout(a, dropout).to(v.dtype) @ v if dropout else a.to(v.dtype) @ v


__all__ = ["canonical_positions", "normalize_scores", "rerope_attention", "rerope_logits"]
