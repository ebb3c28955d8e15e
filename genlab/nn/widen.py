"""Lossless widening: a Transformer ``factor`` times as wide computing the same function (Su, kexue.fm 8444; blocks.md section 12).

Same depth and heads; every width (model, head, MLP, GAU's ``e`` and ``s``) times ``f``. Invariant:
the residual stream becomes ``rep(x) / sqrt(f)`` (``rep`` repeats each feature ``f`` times in place,
so heads stay together and the norm is kept), and a linear map from input scale ``a`` to output
scale ``b`` becomes ``W[rep rows][:, rep cols] * b / (a f)``:

========================== =========================== ======================================
weights                    output scale ``b``          why
========================== =========================== ======================================
queries, keys              ``f^(-1/4)``                scores keep their value under ``1/sqrt(f d)``
values, MLP up, GAU ``W_i`` 1                           GELU / SiLU are not homogeneous: keep the pre-activation
output, MLP down, GAU W_o  ``1/sqrt(f)``               back onto the stream
GAU ``gamma``, ``beta``    ``f^(-1/4)``                as queries and keys
RMSNorm gain               1 (Pre-Norm branch input),  RMSNorm cancels the stream's ``1/sqrt(f)``
                           ``1/sqrt(f)`` (onto stream)
embedding / untied head    ``1/sqrt(f)`` / logits      tied heads: the two ``1/sqrt(f)`` cancel
========================== =========================== ======================================

A branch reads ``rep(h)`` (``a = 1``) after a Pre-Norm and the stream (``a = 1/sqrt(f)``) under
Post-Norm. Biases follow the output scale (an MLP down bias times ``1/sqrt(f)``, the corrected
rule of section 12). Norm epsilons are divided by ``f`` (the mean of squares is), so the only
approximations left are floating-point ones.

Rotary features repeat in pairs (``[x1, x2, x1, x2, x3, x4, ...]`` for interleaved pairing). The
schedule ``theta_i = base^(-2i/d)`` depends on ``d``, so a fresh rotary embedding of width ``f d``
is not exact (a small mismatch, recovered by training); ``exact_rope=True`` (default) gives the
wider embedding the old frequency table repeated per pair, which is exact but lives only in the
module (a model rebuilt from its config gets the fresh schedule; dynamic scalings recompute it).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from genlab.nn.attention import Attention
from genlab.nn.gau import GAU
from genlab.nn.norm import RMSNorm
from genlab.nn.rope import RotaryEmbedding
from genlab.nn.transformer import Transformer
from genlab.utils import check_positive_int


def repeat_index(n: int, f: int) -> Tensor:
    """``[0]*f + [1]*f + ...``: each of ``n`` features repeated ``f`` times in place."""
    return torch.arange(n).repeat_interleave(f)


def rotary_index(dim: int, rope: RotaryEmbedding | None, f: int) -> Tensor:
    """Index map of one head's (or GAU's ``Z``) ``dim`` features: rotary pairs repeated as pairs, the rest in place."""
    rot = rope.dim if rope is not None else 0
    pairs = repeat_index(rot // 2, f)
    if rope is not None and rope.pairing == "half":
        idx = torch.cat([pairs, pairs + rot // 2])
    else:
        idx = torch.stack([2 * pairs, 2 * pairs + 1], -1).flatten()
    return torch.cat([idx, rot + repeat_index(dim - rot, f)])


def _set(module: nn.Module, name: str, value: Tensor) -> None:
    setattr(module, name, nn.Parameter(value.contiguous(), requires_grad=getattr(module, name).requires_grad))


def _linear(lin: nn.Linear, rows: Tensor, cols: Tensor, w_scale: float | Tensor, b_scale: float | Tensor) -> None:
    """``W <- W[rows][:, cols] * w_scale`` (per output row when a tensor), ``b <- b[rows] * b_scale``."""
    w = lin.weight.detach()[rows][:, cols]
    w = w * (w_scale[:, None] if isinstance(w_scale, Tensor) else w_scale)
    _set(lin, "weight", w)
    if lin.bias is not None:
        _set(lin, "bias", lin.bias.detach()[rows] * b_scale)
    lin.out_features, lin.in_features = len(rows), len(cols)


def _norm(norm: nn.Module, idx: Tensor, scale: float, f: int) -> None:
    if isinstance(norm, RMSNorm):
        norm.eps = norm.eps / f
        if norm.weight is not None:
            _set(norm, "weight", norm.weight.detach()[idx] * scale)


def _widen_rope(rope: RotaryEmbedding, f: int, exact: bool) -> None:
    old_freq, old_axes = rope.inv_freq, rope.axis_of_pair
    rope.dim *= f
    if exact:
        rope.inv_freq = old_freq.repeat_interleave(f)
        rope.axis_of_pair = old_axes.repeat_interleave(f)
    else:
        fresh = RotaryEmbedding(rope.dim, rope.base, rope.n_axes, rope.allocation, rope.pairing, scaling=rope.scaling,
                                factor=rope.factor, train_len=rope.train_len, mixed_b=rope.mixed_b, yarn_tau=rope.yarn_tau,
                                rerope_window=rope.rerope_window, rerope_leak=rope.rerope_leak or 16.0)
        rope.inv_freq = fresh.inv_freq.to(old_freq.device)
        rope.axis_of_pair = old_axes.repeat_interleave(f)  # same axis per copied pair
    rope._cache = None


def _widen_stack(model: Transformer, f: int, exact_rope: bool) -> None:
    d = model.dim
    stream = repeat_index(d, f)
    qk_scale = f ** -0.25
    for block in model.blocks:
        a = 1.0 if block.norm_kind == "pre" else f ** -0.5  # scale of what the branches read
        mixer = block.mixer
        if isinstance(mixer, Attention):
            h, hd = mixer.heads, mixer.head_dim
            per_head = rotary_index(hd, mixer.rope, f)
            qk = torch.cat([i * hd + per_head for i in range(h)])
            inner = h * hd
            v = repeat_index(inner, f)
            rows = torch.cat([qk, inner + qk, 2 * inner + v])
            out_scale = torch.cat([torch.full((2 * len(qk),), qk_scale), torch.ones(len(v))]).to(mixer.qkv.weight)
            _linear(mixer.qkv, rows, stream, out_scale / (a * f), out_scale)
            _linear(mixer.out, stream, v, f ** -0.5 / f, f ** -0.5)
            if mixer.scale_mode == "fixed":
                mixer.scale /= math.sqrt(f)
            elif mixer.scale_mode != "qk_norm":
                mixer.scale = (hd * f) ** -0.5
            mixer.head_dim, mixer.dim = hd * f, d * f
            up, down = block.mlp.up, block.mlp.down
            hidden = repeat_index(up.out_features, f)
            _linear(up, hidden, stream, 1 / (a * f), 1.0)
            _linear(down, stream, hidden, f ** -0.5 / f, f ** -0.5)
        elif isinstance(mixer, GAU):
            e, s = mixer.e, mixer.s
            z = rotary_index(s, mixer.rope, f)
            rows = torch.cat([repeat_index(e, f), e + repeat_index(e, f), 2 * e + z])
            _linear(mixer.proj_in, rows, stream, 1 / (a * f), 1.0)
            _linear(mixer.proj_out, stream, repeat_index(e, f), f ** -0.5 / f, f ** -0.5)
            for so in (mixer.q_scale, mixer.k_scale):
                _set(so, "gamma", so.gamma.detach()[z] * qk_scale)
                if so.beta is not None:
                    _set(so, "beta", so.beta.detach()[z] * qk_scale)
            mixer.e, mixer.s = e * f, s * f
        else:
            raise TypeError(f"cannot widen a block with mixer {type(mixer).__name__}")
        gain = 1.0 if block.norm_kind == "pre" else f ** -0.5
        for name in ("norm1", "norm2"):
            if hasattr(block, name):
                _norm(getattr(block, name), stream, gain, f)
    _norm(model.norm, stream, f ** -0.5, f)
    if model.rope is not None:
        _widen_rope(model.rope, f, exact_rope)
    model.dim = d * f


@torch.no_grad()
def widen(model: nn.Module, factor: int = 2, exact_rope: bool = True) -> nn.Module:
    """A copy of ``model`` (a :class:`~genlab.nn.transformer.Transformer` or a
    :class:`~genlab.lm.model.StreamLM`) ``factor`` times as wide with the same outputs.

    A Transformer's output becomes ``rep(y) / sqrt(factor)`` (``y.repeat_interleave(factor, -1)``);
    a StreamLM's logits are unchanged (its config's ``dim`` and ``qk_dim`` are multiplied). Exact up
    to floating point with ``exact_rope``; otherwise up to the RoPE schedule change (module docstring).
    """
    check_positive_int("factor", factor)
    from genlab.lm.model import StreamLM

    if not isinstance(model, (Transformer, StreamLM)):
        raise TypeError(f"widen takes a Transformer or a StreamLM; got {type(model).__name__}")
    wide = copy.deepcopy(model)
    if factor == 1:
        return wide
    if isinstance(wide, Transformer):
        _widen_stack(wide, factor, exact_rope)
        return wide
    d = wide.config.dim
    stream = repeat_index(d, factor)
    _widen_stack(wide.transformer, factor, exact_rope)
    _set(wide.embed, "weight", wide.embed.weight.detach()[:, stream] * factor ** -0.5)
    wide.embed.embedding_dim = d * factor
    if wide.head is not None:
        _linear(wide.head, torch.arange(wide.head.out_features), stream, factor ** -0.5, 1.0)
    wide.config.dim = d * factor
    if wide.config.mixer == "gau":
        wide.config.qk_dim *= factor
    return wide


__all__ = ["repeat_index", "rotary_index", "widen"]
