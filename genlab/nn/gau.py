"""Gated attention unit (FLASH, Hua et al. 2022; GAU-alpha, Su 9052).

``H = silu(X W_i) = [U | V | Z]``, ``Q = Z * gamma_q + beta_q``, ``K = Z * gamma_k + beta_k``
(RoPE on both), ``A = normalize(Q K^T / sqrt(s))``, ``O = (U * (A V)) W_o``. One head with a shared
low-dimensional ``Z`` (``s = 128``) and expanded ``U, V`` (``e = 2 D``): two GAU layers cost about
one attention + MLP block. Normalisations:

* ``softmax_plus`` (GAU-alpha default): ``softmax(QK^T / sqrt(s) * log(max(l, 16)) / log(train_len))``
  with ``l`` the number of valid keys of the row (entropy-invariant);
* ``softmax``: ``softmax(QK^T / sqrt(s))``;
* ``relu2``: ``relu(QK^T / sqrt(s))^2 / l`` (FLASH with Su's ``1/(ns)`` form).

Same call interface as :class:`~genlab.nn.attention.Attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nn.attention import KVCache, attention_mask, check_tokens, masked_attention
from genlab.nn.rerope import rerope_attention
from genlab.nn.rope import RotaryEmbedding
from genlab.utils import check_choice


class ScaleOffset(nn.Module):
    """Per-dimension ``z * gamma + beta`` (gamma = 1, beta = 0 at init, as bert4keras)."""

    param_kinds = {"gamma": "gain", "beta": "bias"}  # Tiger trains them as norm gains and offsets

    def __init__(self, dim: int, offset: bool = True):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim)) if offset else None

    def forward(self, z: Tensor) -> Tensor:
        return z * self.gamma + self.beta if self.beta is not None else z * self.gamma


class GAU(nn.Module):
    """Gated attention unit; ``x (B, T, D) -> (B, T, D)``.

    Args:
        dim: model width ``D``.
        expansion: ``e = expansion * D`` (2 in the papers).
        qk_dim: ``s``, the shared query/key width (128).
        attention: ``"softmax_plus"``, ``"softmax"`` or ``"relu2"``.
        rope: rotary embedding for Q and K (``RotaryEmbedding(qk_dim)`` or a multi-axis one).
        train_len: the length at which ``softmax_plus`` equals ``softmax``.
        bias: biases on the projections (GAU-alpha: none).
        dropout: attention-probability dropout while training (GAU-alpha: 0.1).
        log_n_post_hoc: ``"softmax"`` logits times ``max(1, log n / log train_len)`` (length
            extrapolation without training; ``softmax_plus`` already scales, ``relu2`` cannot).

    Call interface and KV cache as :class:`~genlab.nn.attention.Attention` (one head).
    """

    def __init__(self, dim: int, expansion: float = 2.0, qk_dim: int = 128, attention: str = "softmax_plus",
                 rope: RotaryEmbedding | None = None, train_len: int = 512, bias: bool = False, dropout: float = 0.0,
                 log_n_post_hoc: bool = False):
        super().__init__()
        check_choice("attention", attention, ["softmax_plus", "softmax", "relu2"])
        if log_n_post_hoc and attention != "softmax":
            raise ValueError(f"log_n_post_hoc needs attention='softmax'; got attention={attention!r}")
        self.log_n_post_hoc = log_n_post_hoc
        self.e, self.s = int(expansion * dim), qk_dim
        self.proj_in = nn.Linear(dim, 2 * self.e + self.s, bias=bias)
        self.q_scale, self.k_scale = ScaleOffset(qk_dim), ScaleOffset(qk_dim)
        self.proj_out = nn.Linear(self.e, dim, bias=bias)
        self.attention, self.rope, self.train_len, self.dropout = attention, rope, train_len, dropout

    def forward(self, x: Tensor, positions: Tensor | None = None, key_padding_mask: Tensor | None = None,
                causal: bool = False, cache: KVCache | None = None) -> Tensor:
        check_tokens(x, self.proj_in.in_features, self.proj_in.weight, positions, cache, self.rope, "GAU")
        b, t, _ = x.shape
        u, v, z = F.silu(self.proj_in(x)).split([self.e, self.e, self.s], -1)  # (B, T, e), (B, T, e), (B, T, s)
        q, k = self.q_scale(z), self.k_scale(z)
        offset = cache.length if cache is not None else 0
        log_n = self.train_len if self.attention == "softmax_plus" or self.log_n_post_hoc else None
        floor = self.train_len if self.log_n_post_hoc else 16
        if self.rope is not None and self.rope.rerope_window:
            o = rerope_attention(self.rope, q[:, None], k[:, None], v[:, None], positions, key_padding_mask, causal, cache,
                                 self.s ** -0.5, "relu2" if self.attention == "relu2" else "softmax", log_n, floor,
                                 self.dropout if self.training else 0.0)
            return self.proj_out(u * o[:, 0])
        if self.rope is not None:
            q, k = self.rope(q, positions, offset), self.rope(k, positions, offset)
        q, k, v = q[:, None], k[:, None], v[:, None]  # one head: (B, 1, T, .)
        if cache is not None:
            k, v = cache.update(k, v)
        s = k.shape[-2]
        # Causal softmax without cache or padding takes SDPA's is_causal fast path (no mask tensor).
        fast_causal = causal and key_padding_mask is None and offset == 0 and t == s and self.attention != "relu2"
        mask = None if fast_causal else attention_mask(b, t, s, offset, causal, key_padding_mask, x.device)
        if self.attention == "relu2":
            logits = (q @ k.transpose(-1, -2)).float() * self.s ** -0.5  # (B, 1, T, S)
            n = mask.sum(-1, keepdim=True).clamp_min(1) if mask is not None else torch.full_like(logits[..., :1], s)
            a = F.relu(logits).square() / n
            if mask is not None:
                a = a.masked_fill(~mask, 0.0)
            o = F.dropout(a, self.dropout, self.training).to(v.dtype) @ v
        else:
            o = masked_attention(q, k, v, mask, self.s ** -0.5, log_n, causal_fast_path=fast_causal,
                                 dropout=self.dropout if self.training else 0.0, log_n_floor=floor)
        return self.proj_out(u * o[:, 0])  # (B, T, D)
