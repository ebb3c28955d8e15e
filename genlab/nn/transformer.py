"""Transformer blocks and stacks: attention + MLP or GAU layers, Pre-Norm or Post-Norm, DeepNet scaling.

* Pre-Norm: ``x <- alpha x + F(Norm(x))``; the stack ends with a final norm.
* Post-Norm: ``x <- Norm(alpha x + F(x))`` (Su's choice and GAU-alpha's; needs warm-up or DeepNet
  scaling to train deep stacks).
* DeepNet (Wang et al. 2022; Su 8978): the residual weight ``alpha`` and an init
  gain ``lambda`` on the residual-branch matrices (value/output projections and the MLP; GAU's
  ``U``, ``V`` and output) from the number ``M`` of residual sublayers (``2 x depth`` for
  attention + MLP, ``depth`` for GAU) and the optimizer family:

  ======== ==================== ===================== ================================
  family   Post-Norm alpha       Post-Norm lambda      Pre-Norm (alpha = 1) lambda
  ======== ==================== ===================== ================================
  sgd      ``M^(1/4)``           ``M^(-1/4)``          ``M^(-1/2)``
  adam     ``M^(1/2)``           ``M^(-1/2)``          ``1/M``
  lamb     1                     ``M^(-1/2)``          ``M^(-1/2)``
  ======== ==================== ===================== ================================

  ``adam`` covers sign-like updates (AdamW, Lion); ``lamb`` relative ones (LAMB, Tiger).

Every linear weight starts from LeCun's truncated normal (std ``1/sqrt(fan_in)`` after the
truncation at two standard deviations, as GAU-alpha), biases at zero; initialisation lives in
:meth:`TransformerBlock.reset_parameters` only.

Shapes: ``x (B, T, D)``; ``positions`` ``(T,)``, ``(B, T)`` or ``(n_axes, B, T)``;
``key_padding_mask (B, S)`` (True = real token) over all keys, cached ones included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nn.attention import Attention, KVCache, check_tokens
from genlab.nn.gau import GAU
from genlab.nn.norm import RMSNorm
from genlab.nn.rope import RotaryEmbedding
from genlab.utils import check_choice, check_positive_int

MIXERS = ["attention", "gau"]
NORMS = ["pre", "post"]
DEEPNET_FAMILIES = ["sgd", "adam", "lamb"]
TRUNC_STD = 1.13684723  # 1/std of a unit normal truncated at +-2: restores unit variance


def lecun_normal_(weight: Tensor, gain: float = 1.0) -> Tensor:
    """Truncated normal (+-2 sigma) with standard deviation ``gain / sqrt(fan_in)`` after truncation."""
    std = gain * TRUNC_STD / math.sqrt(weight.shape[1])
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def deepnet_constants(sublayers: int, norm: str, family: str) -> tuple[float, float]:
    """``(alpha, lambda)`` for ``sublayers`` residual branches (the table in the module docstring)."""
    check_choice("deepnet", family, DEEPNET_FAMILIES)
    m = float(sublayers)
    if norm == "post":
        return {"sgd": (m ** 0.25, m ** -0.25), "adam": (m ** 0.5, m ** -0.5), "lamb": (1.0, m ** -0.5)}[family]
    return 1.0, {"sgd": m ** -0.5, "adam": 1.0 / m, "lamb": m ** -0.5}[family]


class MLP(nn.Module):
    """``Linear -> GELU -> Linear``: ``(..., D) -> (..., D)`` with a hidden width of ``hidden``."""

    def __init__(self, dim: int, hidden: int, bias: bool = False):
        super().__init__()
        self.up, self.down = nn.Linear(dim, hidden, bias=bias), nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(F.gelu(self.up(x)))


class TransformerBlock(nn.Module):
    """One residual block: attention + MLP (two sublayers) or one GAU layer; ``(B, T, D) -> (B, T, D)``.

    Args:
        dim: model width ``D``.
        heads: attention heads (``mixer="attention"``); GAU is single-head and does not use it.
        mixer: ``"attention"`` (multi-head attention then an MLP) or ``"gau"`` (one gated
            attention unit, no MLP; two GAU layers cost about one attention + MLP block).
        mlp_ratio: MLP hidden width over ``D`` (attention blocks).
        norm: ``"pre"`` or ``"post"`` (see the module docstring).
        rope: rotary embedding for queries and keys (shared by every block of a stack); None: no
            positions.
        deepnet_alpha: the residual weight ``alpha``.
        dropout: attention-probability dropout and dropout on each residual branch.
        **mixer_kwargs: passed to :class:`~genlab.nn.attention.Attention` (``head_dim``, ``scale``,
            ``train_len``, ``bias``) or :class:`~genlab.nn.gau.GAU` (``expansion``, ``qk_dim``,
            ``attention``, ``train_len``, ``bias``).
    """

    def __init__(self, dim: int, heads: int = 8, mixer: str = "attention", mlp_ratio: float = 4.0, norm: str = "pre",
                 rope: RotaryEmbedding | None = None, deepnet_alpha: float = 1.0, dropout: float = 0.0, **mixer_kwargs):
        super().__init__()
        check_choice("mixer", mixer, MIXERS)
        check_choice("norm", norm, NORMS)
        check_positive_int("dim", dim)
        if not deepnet_alpha > 0:
            raise ValueError(f"deepnet_alpha={deepnet_alpha!r} must be > 0")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout!r} must be in [0, 1)")
        self.mixer_kind, self.norm_kind, self.alpha = mixer, norm, float(deepnet_alpha)
        try:
            if mixer == "attention":
                self.mixer = Attention(dim, heads, rope=rope, dropout=dropout, **mixer_kwargs)
            else:
                self.mixer = GAU(dim, rope=rope, dropout=dropout, **mixer_kwargs)
        except TypeError as e:
            raise TypeError(f"mixer_kwargs {sorted(mixer_kwargs)} do not fit mixer={mixer!r}: {e}") from None
        self.norm1 = RMSNorm(dim)
        if mixer == "attention":
            if not mlp_ratio > 0:
                raise ValueError(f"mlp_ratio={mlp_ratio!r} must be > 0")
            self.mlp = MLP(dim, max(1, round(dim * mlp_ratio)), bias=mixer_kwargs.get("bias", False))
            self.norm2 = RMSNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.reset_parameters()

    def branch_weights(self) -> list[Tensor]:
        """Views of the weights DeepNet scales: value/output projections and the MLP, or GAU's U, V, W_o."""
        if self.mixer_kind == "attention":
            inner = self.mixer.out.in_features
            return [self.mixer.qkv.weight[2 * inner:], self.mixer.out.weight, self.mlp.up.weight, self.mlp.down.weight]
        return [self.mixer.proj_in.weight[: 2 * self.mixer.e], self.mixer.proj_out.weight]

    @torch.no_grad()
    def reset_parameters(self, branch_gain: float = 1.0) -> None:
        """LeCun truncated-normal weights, zero biases, branch weights times ``branch_gain``."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                lecun_normal_(m.weight)
                if m.bias is not None:
                    m.bias.zero_()
        for w in self.branch_weights():
            w.mul_(branch_gain)

    def _residual(self, x: Tensor, branch, norm: nn.Module) -> Tensor:
        skip = x if self.alpha == 1.0 else self.alpha * x
        if self.norm_kind == "pre":
            return skip + self.drop(branch(norm(x)))
        return norm(skip + self.drop(branch(x)))

    def forward(self, x: Tensor, positions: Tensor | None = None, key_padding_mask: Tensor | None = None,
                causal: bool = False, cache: KVCache | None = None) -> Tensor:
        """``x (B, T, D) -> (B, T, D)``; with ``cache``, ``x`` holds the new tokens only."""
        x = self._residual(x, lambda h: self.mixer(h, positions, key_padding_mask, causal, cache), self.norm1)
        if self.mixer_kind == "attention":
            x = self._residual(x, self.mlp, self.norm2)
        return x


class Transformer(nn.Module):
    """A stack of ``depth`` :class:`TransformerBlock` s sharing one rotary embedding; ``(B, T, D) -> (B, T, D)``.

    Args:
        dim, heads, mixer, norm: as :class:`TransformerBlock`.
        depth: number of blocks.
        rope: the shared :class:`RotaryEmbedding`; None builds a 1-D one over the whole head
            (``head_dim`` or ``dim // heads`` for attention, ``qk_dim`` for GAU); False: no positions.
        deepnet: False, or the optimizer family of the DeepNet constants (``"sgd"``, ``"adam"``,
            ``"lamb"``; True means ``"adam"``).
        **block_kwargs: ``mlp_ratio``, ``dropout`` and the mixer's arguments.

    A Pre-Norm stack ends with a final RMSNorm (a Post-Norm stack is already normalised).
    Input is checked like :class:`~genlab.nn.attention.Attention`'s (a non-empty ``(B, T, dim)``
    float tensor in the weights' dtype unless autocast is on; positions and cache of its batch).

        model = Transformer(256, depth=4, heads=4)
        y = model(x, causal=True)                               # x (B, T, 256)
        cache = model.new_cache()
        y0 = model(x[:, :10], causal=True, cache=cache)         # prefill
        y1 = model(x[:, 10:11], causal=True, cache=cache)       # one more token == y[:, 10:11]
    """

    def __init__(self, dim: int, depth: int, heads: int = 8, mixer: str = "attention", norm: str = "pre",
                 rope: RotaryEmbedding | None | bool = None, deepnet: bool | str = False, **block_kwargs):
        super().__init__()
        check_positive_int("depth", depth)
        check_choice("mixer", mixer, MIXERS)
        check_choice("norm", norm, NORMS)
        if rope is None:
            rot_dim = block_kwargs.get("qk_dim", 128) if mixer == "gau" else block_kwargs.get("head_dim") or dim // heads
            rope = RotaryEmbedding(rot_dim)
        elif rope is False:
            rope = None
        elif not isinstance(rope, RotaryEmbedding):
            raise TypeError(f"rope must be a RotaryEmbedding, None (default 1-D RoPE) or False (none); got {type(rope).__name__}")
        alpha, gain = 1.0, 1.0
        if deepnet:
            family = "adam" if deepnet is True else deepnet
            alpha, gain = deepnet_constants(depth * (2 if mixer == "attention" else 1), norm, family)
        self.rope = rope
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, mixer, norm=norm, rope=rope, deepnet_alpha=alpha, **block_kwargs) for _ in range(depth)
        )
        for block in self.blocks:
            block.reset_parameters(gain)
        self.norm = RMSNorm(dim) if norm == "pre" else nn.Identity()
        self.dim = dim

    def new_cache(self) -> list[KVCache]:
        """One empty :class:`KVCache` per block, for incremental decoding."""
        return [KVCache() for _ in self.blocks]

    def forward(self, x: Tensor, positions: Tensor | None = None, key_padding_mask: Tensor | None = None,
                causal: bool = False, cache: list[KVCache] | None = None) -> Tensor:
        """``x (B, T, D) -> (B, T, D)``; with ``cache`` (from :meth:`new_cache`), ``x`` holds the new tokens only."""
        if cache is not None and len(cache) != len(self.blocks):
            raise ValueError(f"cache has {len(cache)} entries; this Transformer has {len(self.blocks)} blocks (use new_cache())")
        check_tokens(x, self.dim, next(self.parameters()), positions, cache[0] if cache else None, self.rope,
                     "Transformer")
        for i, block in enumerate(self.blocks):
            x = block(x, positions, key_padding_mask, causal, cache[i] if cache is not None else None)
        return self.norm(x)


__all__ = ["MLP", "Transformer", "TransformerBlock", "deepnet_constants", "lecun_normal_"]
