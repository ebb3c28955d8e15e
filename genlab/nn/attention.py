"""Multi-head attention on ``F.scaled_dot_product_attention`` with RoPE, masks and a KV cache.

Shapes: ``x (B, T, D)``; ``positions`` ``(T,)``, ``(B, T)`` or ``(n_axes, B, T)`` for the new tokens;
``key_padding_mask (B, S)`` with True for real keys, over all ``S`` keys including cached ones.

A query with no key to attend to (a padding query under a causal mask, or every query of a
fully padded sequence) outputs zeros, by design: no NaN reaches the rest of the batch or the
gradients, and checking for it would cost a host synchronisation in every layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nn.rope import RotaryEmbedding, log_n_scale
from genlab.utils import check_choice, check_positive_int


class KVCache:
    """Keys and values ``(B, H, S, d)`` of one layer, grown by one forward call at a time."""

    def __init__(self):
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    @property
    def batch(self) -> int | None:
        """Sequences held (None while empty)."""
        return None if self.k is None else self.k.shape[0]

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``k, v (..., T, d)``; returns all keys and values so far.

        Without autograd the new entries are written in place into buffers that grow by
        doubling, and ``k``, ``v`` are views of their filled part: a decoding step copies its
        own token, not the whole cache (``torch.cat`` would copy all ``S`` entries every step).
        """
        if self.k is None:
            self.k, self.v = k, v
            return k, v
        if torch.is_grad_enabled() and (k.requires_grad or v.requires_grad or self.k.requires_grad):
            self.k, self.v = torch.cat([self.k, k], -2), torch.cat([self.v, v], -2)
            return self.k, self.v
        n, t = self.k.shape[-2], k.shape[-2]
        buffers = getattr(self, "_buffers", None)
        if (buffers is None or buffers[0].shape[-2] < n + t or buffers[0].data_ptr() != self.k.data_ptr()
                or buffers[1].data_ptr() != self.v.data_ptr() or buffers[0].shape[:-2] != k.shape[:-2]):
            buffers = tuple(x.new_empty(*x.shape[:-2], max(2 * (n + t), 16), x.shape[-1]) for x in (self.k, self.v))
            buffers[0][..., :n, :] = self.k
            buffers[1][..., :n, :] = self.v
            self._buffers = buffers
        buffers[0][..., n:n + t, :] = k
        buffers[1][..., n:n + t, :] = v
        self.k, self.v = buffers[0][..., : n + t, :], buffers[1][..., : n + t, :]
        return self.k, self.v


def check_tokens(x: Tensor, dim: int, weight: Tensor, positions: Tensor | None = None, cache: KVCache | None = None,
                 rope: RotaryEmbedding | None = None, name: str = "Attention") -> None:
    """Raise ``ValueError``/``TypeError`` unless ``x`` is a non-empty ``(B, T, dim)`` float tensor that the
    weights can take (same dtype, or autocast on), ``positions`` fit ``rope`` and ``(B, T)`` (``(T,)`` or
    ``(B, T)``; with several axes ``(n_axes, T)`` or ``(n_axes, B, T)``) and ``cache`` holds ``B`` sequences."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} input x must be a tensor (B, T, D={dim}); got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{name} input x must be (B, T, D={dim}); got shape {tuple(x.shape)}")
    b, t, d = x.shape
    if d != dim:
        raise ValueError(f"{name} input x has width D={d}; expected dim={dim} (shape {tuple(x.shape)})")
    if b == 0 or t == 0:
        raise ValueError(f"{name} input x of shape {tuple(x.shape)} is empty; expected B >= 1 sequences of T >= 1 tokens")
    if not x.is_floating_point():
        raise TypeError(f"{name} input x must be a floating-point tensor; got dtype {x.dtype}")
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} input x has dtype {x.dtype} but the weights are {weight.dtype}; cast the module "
                        f"(.to({x.dtype})) or run under torch.autocast({x.device.type!r}, dtype={x.dtype})")
    if positions is not None and rope is not None:
        axes = rope.n_axes
        lead = (axes,) if axes > 1 else ()
        shape = tuple(positions.shape) if isinstance(positions, Tensor) else None
        if shape not in (lead + (t,), lead + (b, t)):
            forms = f"({axes}, T) or ({axes}, B, T)" if axes > 1 else "(T,) or (B, T)"
            got = shape if shape is not None else type(positions).__name__
            raise ValueError(f"positions must be {forms} with B={b}, T={t}; got {got}")
    if cache is not None and cache.batch is not None and cache.batch != b:
        raise ValueError(f"x has batch size {b} but the cache holds {cache.batch} sequences; a cache serves one "
                         "batch from prefill to the last token (start a new cache for another batch)")


def attention_mask(batch: int, q_len: int, k_len: int, offset: int, causal: bool, key_padding_mask: Tensor | None,
                   device: torch.device) -> Tensor | None:
    """Boolean mask ``(B, 1, T, S)`` (True = may attend) or None when nothing is masked."""
    if not causal and key_padding_mask is None:
        return None
    mask = torch.ones(batch, 1, q_len, k_len, dtype=torch.bool, device=device)
    if causal:  # query t sits at absolute index offset + t
        q_idx = torch.arange(q_len, device=device)[:, None] + offset
        mask = mask & (torch.arange(k_len, device=device)[None, :] <= q_idx)
    if key_padding_mask is not None:
        if key_padding_mask.shape != (batch, k_len):
            raise ValueError(f"key_padding_mask must be (B={batch}, S={k_len}); got {tuple(key_padding_mask.shape)}")
        mask = mask & key_padding_mask.bool()[:, None, None, :]
    return mask


def masked_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float, log_n_train_len: int | None = None,
                     causal_fast_path: bool = False, dropout: float = 0.0, log_n_floor: int = 16) -> Tensor:
    """Softmax attention ``(B, H, T, d_v)``; rows with no valid key give zeros (never NaN).

    With ``log_n_train_len``, each query's logits are scaled by ``log(max(n, floor)) / log(train_len)``
    where ``n`` is the number of keys it may attend to (the entropy-invariant scale, Su 8823).
    ``floor = 16`` is bert4keras' choice for models trained with it; ``floor = train_len`` gives the
    post-hoc extrapolation factor ``max(1, log n / log train_len)`` for models trained without it.
    ``dropout`` drops attention probabilities (pass 0 outside training).
    """
    if log_n_train_len is not None:
        if mask is not None:
            n = mask.sum(-1, keepdim=True)  # (B, 1, T, 1) keys each query may see
        elif causal_fast_path:
            n = torch.arange(1, q.shape[-2] + 1, device=q.device)[:, None]  # row t sees t + 1 keys
        else:
            n = torch.tensor(k.shape[-2], device=q.device)
        q = q * log_n_scale(n, log_n_train_len, log_n_floor).to(q.dtype)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal_fast_path, scale=scale, dropout_p=dropout)
    empty = ~mask.any(-1, keepdim=True)  # (B, 1, T, 1)
    safe = mask | empty  # a fully masked row attends everywhere, then is zeroed
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale, dropout_p=dropout)
    return out.masked_fill(empty, 0.0)


class Attention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017) with rotary positions (RoFormer).

    Args:
        dim: model width ``D``.
        heads: number of heads; ``head_dim = dim // heads`` unless given.
        rope: a :class:`RotaryEmbedding` applied to queries and keys (None: no positions).
        scale: ``"default"`` (``1/sqrt(d)``), ``"log_n"`` (entropy-invariant, Su 8823), ``"fixed"``
            (``scale_alpha / sqrt(d)``) or ``"qk_norm"`` (unit queries and keys, logits times
            ``scale_alpha``; Su 9812, blocks.md section 5.2).
        scale_alpha: ``alpha`` of ``"fixed"`` and ``"qk_norm"``.
        log_n_post_hoc: times ``max(1, log n / log train_len)`` (length extrapolation without training).
        train_len: the length at which ``log_n`` equals the default scale.
        log_n_floor: ``n`` is floored here (16; ``train_len`` for post-hoc length extrapolation).
        bias: biases on the projections.
        dropout: attention-probability dropout while training.

    ``forward(x (B, T, D), positions, key_padding_mask (B, S), causal, cache) -> (B, T, D)``: with a
    :class:`KVCache`, ``x`` holds the new tokens only and ``key_padding_mask`` covers all ``S``
    keys (cached and new); positions default to ``cache.length + 0 .. T-1``. ``x`` must be
    non-empty, in the weights' dtype unless autocast is on; a query with no valid key (e.g. a fully
    padded sequence) outputs zeros (module docstring).
    """

    def __init__(self, dim: int, heads: int = 8, head_dim: int | None = None, rope: RotaryEmbedding | None = None,
                 scale: str = "default", train_len: int = 512, bias: bool = False, dropout: float = 0.0,
                 log_n_floor: int = 16, scale_alpha: float = 1.0, log_n_post_hoc: bool = False):
        super().__init__()
        check_choice("scale", scale, ["default", "log_n", "fixed", "qk_norm"])
        if not scale_alpha > 0:
            raise ValueError(f"scale_alpha={scale_alpha!r} must be > 0")
        check_positive_int("heads", heads)
        self.heads = heads
        self.head_dim = head_dim or dim // heads
        if self.head_dim * heads != dim and head_dim is None:
            raise ValueError(f"dim={dim} is not divisible by heads={heads}; pass head_dim")
        inner = self.head_dim * heads
        self.qkv = nn.Linear(dim, 3 * inner, bias=bias)
        self.out = nn.Linear(inner, dim, bias=bias)
        self.rope, self.scale_mode, self.train_len, self.dropout = rope, scale, train_len, dropout
        self.log_n_floor, self.log_n_post_hoc = (train_len if log_n_post_hoc else log_n_floor), log_n_post_hoc
        self.scale = {"fixed": scale_alpha * self.head_dim ** -0.5, "qk_norm": scale_alpha}.get(scale, self.head_dim ** -0.5)
        self.dim = dim

    def forward(self, x: Tensor, positions: Tensor | None = None, key_padding_mask: Tensor | None = None,
                causal: bool = False, cache: KVCache | None = None) -> Tensor:
        check_tokens(x, self.dim, self.qkv.weight, positions, cache, self.rope)
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, T, d) each
        if self.scale_mode == "qk_norm":
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        offset = cache.length if cache is not None else 0
        log_n = self.train_len if self.scale_mode == "log_n" or self.log_n_post_hoc else None
        if self.rope is not None and self.rope.rerope_window:
            from genlab.nn.rerope import rerope_attention

            out = rerope_attention(self.rope, q, k, v, positions, key_padding_mask, causal, cache, self.scale, "softmax", log_n,
                                   self.log_n_floor, self.dropout if self.training else 0.0)
            return self.out(out.transpose(1, 2).reshape(b, t, -1))
        if self.rope is not None:
            q, k = self.rope(q, positions, offset), self.rope(k, positions, offset)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H, S, d)
        s = k.shape[-2]
        # Plain causal self-attention without cache or padding takes SDPA's is_causal fast path.
        fast_causal = causal and key_padding_mask is None and offset == 0 and t == s
        # One new token after all the cached ones sees every key: no mask at all.
        last_only = causal and key_padding_mask is None and t == 1 and offset == s - 1
        mask = None if fast_causal or last_only else attention_mask(b, t, s, offset, causal, key_padding_mask, x.device)
        out = masked_attention(q, k, v, mask, self.scale, log_n, causal_fast_path=fast_causal,
                               dropout=self.dropout if self.training else 0.0, log_n_floor=self.log_n_floor)
        return self.out(out.transpose(1, 2).reshape(b, t, -1))  # (B, T, D)
