"""Decoder-only Transformer over mixed text/image token streams (RoPE-Tie positions, Su kexue.fm 10040).

Token embedding -> :class:`genlab.nn.transformer.Transformer` (attention or GAU blocks, causal,
2-axis rotary embedding with the alternating allocation, so text on the diagonal is exactly
RoPE-1D) -> linear head over the shared vocabulary. Positions come from the stream
(:mod:`genlab.lm.stream`), never from the token index.

    model = StreamLM(LMConfig(image_codebook_size=240, image_grid=[4, 4]))
    logits = model(batch.tokens, batch.positions, batch.padding_mask)   # (B, T, V)
    loss = model.loss(batch, on="all")                                  # next-token cross-entropy
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.io import PretrainedMixin, known_fields
from genlab.lm.stream import StreamBatch, Vocabulary, loss_mask
from genlab.nn.attention import KVCache
from genlab.nn.positions import MODES
from genlab.nn.rope import SCALINGS, RotaryEmbedding
from genlab.nn.transformer import DEEPNET_FAMILIES, Transformer
from genlab.utils import check_choice, check_positive_int

WEIGHTS_KIND = "StreamLM"


@dataclass
class LMConfig:
    """Architecture of a :class:`StreamLM` (fields shared with ``scripts/train_lm.py``)."""

    image_codebook_size: int = 0  # image ids after the text ids; 0 = a text-only model
    image_grid: list[int] = field(default_factory=lambda: [4, 4])  # (h, w) of every image in the stream
    positions: str = "rope_tie"  # rope_tie | rope_tv | flatten1d
    context: int = 64  # most tokens a stream (prompt plus generated tokens) may hold
    dim: int = 128  # model width
    depth: int = 4  # Transformer blocks
    heads: int = 4  # attention heads
    mixer: str = "attention"  # attention | gau
    norm: str = "pre"  # pre | post
    mlp_ratio: float = 4.0  # attention blocks' MLP width
    qk_dim: int = 64  # GAU's shared query/key width s
    dropout: float = 0.0  # dropout probability in the blocks
    rope_base: float = 10000.0  # RoPE frequency base
    # Length and attention scale (blocks.md sections 4-5); evaluate longer streams by raising ``context``.
    train_len: int = 0  # length trained at (log-n scales, RoPE scalings); 0 = context
    attn_scale: str = "default"  # default (1/sqrt(d)) | log_n (entropy-invariant) | fixed (alpha/sqrt(d)) | qk_norm (alpha cos)
    attn_alpha: float = 0.0  # alpha of fixed / qk_norm; 0 = section 5.2's optimum for n = train_len / 2
    log_n_post_hoc: bool = False  # logits times max(1, ln n / ln train_len) (attention, or GAU softmax)
    rope_scaling: str = "none"  # none | pi | ntk | ntk_dynamic | ntk_mixed | yarn | yarn_dynamic | rerope | leaky_rerope
    rope_factor: float = 0.0  # L_test / L_train of the fixed scalings; 0 = context / train_len
    ntk_mixed_b: float = 0.625  # NTK-mixed exponent b
    yarn_tau: float = 32.0  # YaRN ramp top (rotations over train_len)
    rerope_window: int = 0  # ReRoPE window w; 0 = train_len / 4
    rerope_leak: float = 16.0  # Leaky ReRoPE k
    gau_attention: str = "softmax_plus"  # GAU normalisation: softmax_plus | softmax | relu2
    deepnet: str = "none"  # none | sgd | adam | lamb: DeepNet residual weight and init gain for that optimizer family
    embeddings: str = "untied"  # untied | tied | tied_swap (tied, head reads the halves of h swapped; Su 9698)

    @property
    def trained_len(self) -> int:
        return self.train_len or self.context

    def attention_alpha(self) -> float:
        """``attn_alpha``, or blocks.md 5.2's optimum at ``n = train_len / 2``: ``0.84 sqrt(ln n)`` (fixed), ``3.5 ln n`` (qk_norm)."""
        if self.attn_alpha:
            return self.attn_alpha
        n = max(self.trained_len / 2, 2)
        return 0.84 * math.sqrt(math.log(n)) if self.attn_scale == "fixed" else 3.5 * math.log(n)

    def rope_kwargs(self) -> dict:
        """Keyword arguments of the stack's :class:`RotaryEmbedding` (scaling and its constants)."""
        factor = self.rope_factor or max(self.context / self.trained_len, 1.0)
        return {"scaling": self.rope_scaling, "factor": factor, "train_len": self.trained_len, "mixed_b": self.ntk_mixed_b,
                "yarn_tau": self.yarn_tau, "rerope_window": self.rerope_window or max(self.trained_len // 4, 1),
                "rerope_leak": self.rerope_leak}

    def mixer_kwargs(self) -> dict:
        """Keyword arguments of every block's mixer."""
        if self.mixer == "gau":
            return {"qk_dim": self.qk_dim, "attention": self.gau_attention, "train_len": self.trained_len,
                    "log_n_post_hoc": self.log_n_post_hoc}
        return {"scale": self.attn_scale, "train_len": self.trained_len, "log_n_post_hoc": self.log_n_post_hoc,
                **({"scale_alpha": self.attention_alpha()} if self.attn_scale in ("fixed", "qk_norm") else {})}

    def validate_model(self) -> None:
        check_choice("positions", self.positions, MODES)
        check_choice("mixer", self.mixer, ["attention", "gau"])
        check_choice("norm", self.norm, ["pre", "post"])
        check_positive_int("image_codebook_size", self.image_codebook_size, minimum=0)
        for key in ("context", "dim", "depth", "heads", "qk_dim"):
            check_positive_int(key, getattr(self, key))
        if len(self.image_grid) != 2 or min(self.image_grid) < 1:
            raise ValueError(f"image_grid={self.image_grid!r} must be [h, w] with h, w >= 1")
        if self.mixer == "attention" and (self.dim % self.heads or (self.dim // self.heads) % 2):
            raise ValueError(f"dim={self.dim} must split into heads={self.heads} heads of even size")
        if self.qk_dim % 2:
            raise ValueError(f"qk_dim={self.qk_dim} must be even (rotary pairs)")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        check_choice("attn_scale", self.attn_scale, ["default", "log_n", "fixed", "qk_norm"])
        check_choice("rope_scaling", self.rope_scaling, SCALINGS)
        check_choice("gau_attention", self.gau_attention, ["softmax_plus", "softmax", "relu2"])
        check_choice("deepnet", self.deepnet, ["none", *DEEPNET_FAMILIES])
        check_choice("embeddings", self.embeddings, ["untied", "tied", "tied_swap"])
        for key in ("train_len", "rerope_window"):
            check_positive_int(key, getattr(self, key), minimum=0)
        for key, low in (("attn_alpha", 0), ("rope_factor", 0), ("rerope_leak", 1), ("yarn_tau", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (key == "yarn_tau" and value == 1):
                raise ValueError(f"{key}={value!r} must be a number {'>' if key == 'yarn_tau' else '>='} {low}")
        if self.rope_factor and self.rope_factor < 1:
            raise ValueError(f"rope_factor={self.rope_factor} must be 0 (context / train_len) or >= 1")
        if not 0 <= self.ntk_mixed_b <= 1:
            raise ValueError(f"ntk_mixed_b={self.ntk_mixed_b} must be in [0, 1]")
        if self.log_n_post_hoc and (self.attn_scale == "log_n" if self.mixer == "attention" else self.gau_attention != "softmax"):
            raise ValueError("log_n_post_hoc applies to attn_scale default/fixed/qk_norm or gau_attention='softmax' "
                             f"(got mixer={self.mixer!r}, attn_scale={self.attn_scale!r}, gau_attention={self.gau_attention!r})")
        if self.embeddings == "tied_swap" and self.dim % 2:
            raise ValueError(f"embeddings='tied_swap' needs an even dim; got dim={self.dim}")


def token_losses(logits: Tensor, batch: StreamBatch, on: str = "all") -> tuple[Tensor, Tensor]:
    """Next-token cross-entropy ``(B, T - 1)`` in float32 (zero where not counted) and the counted mask."""
    mask = loss_mask(batch, on)
    ce = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), batch.tokens[:, 1:], reduction="none")  # (B, T-1)
    return ce * mask, mask


def next_token_loss(logits: Tensor, batch: StreamBatch, on: str = "all") -> Tensor:
    """Mean next-token cross-entropy over the targets :func:`~genlab.lm.stream.loss_mask` selects.

    ``logits (B, T, V)`` of ``batch.tokens``; float32 whatever the autocast dtype.
    """
    ce, mask = token_losses(logits, batch, on)
    if not mask.any():
        raise ValueError(f"the batch has no {on!r} targets to train on")
    return ce.sum() / mask.sum()


def lm_config_dict(cfg) -> dict:
    """The :class:`LMConfig` fields of ``cfg`` (a script config that inherits them)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(LMConfig)}


class StreamLM(PretrainedMixin, nn.Module):
    """Next-token model over a :class:`~genlab.lm.stream.Vocabulary` of text bytes and image codes.

    Args:
        config: an :class:`LMConfig` (or a config that inherits its fields).

    ``save_pretrained(folder)`` / ``StreamLM.from_pretrained(folder_or_file)`` keep it (see :mod:`genlab.io`).
    """

    weights_kind = WEIGHTS_KIND

    def __init__(self, config: LMConfig):
        super().__init__()
        cfg = LMConfig(**lm_config_dict(config))
        cfg.validate_model()
        self.config = cfg
        self.vocab = Vocabulary(cfg.image_codebook_size)
        # Attention rotates each head; GAU rotates its one shared query/key width s.
        rope_dim = cfg.dim // cfg.heads if cfg.mixer == "attention" else cfg.qk_dim
        self.embed = nn.Embedding(self.vocab.size, cfg.dim)
        self.transformer = Transformer(cfg.dim, cfg.depth, cfg.heads, cfg.mixer, cfg.norm,
                                       rope=RotaryEmbedding(rope_dim, cfg.rope_base, n_axes=2, **cfg.rope_kwargs()),
                                       deepnet=False if cfg.deepnet == "none" else cfg.deepnet,
                                       mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout, **cfg.mixer_kwargs())
        # Tied: the head is the embedding table (dense gradients for every row: no Lion/Tiger drift, Su 9736).
        self.head = nn.Linear(cfg.dim, self.vocab.size, bias=False) if cfg.embeddings == "untied" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style: N(0, 0.02) embeddings and head (the stack initialises itself)."""
        nn.init.normal_(self.embed.weight, std=0.02)
        if self.head is not None:
            nn.init.normal_(self.head.weight, std=0.02)

    def logits(self, h: Tensor) -> Tensor:
        """Head ``(..., D) -> (..., V)``: the untied projection, or the embedding table (halves swapped for tied_swap)."""
        if self.head is not None:
            return self.head(h)
        if self.config.embeddings == "tied_swap":
            h = torch.cat(h.chunk(2, -1)[::-1], -1)
        return F.linear(h, self.embed.weight)

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.config.image_grid)

    def new_cache(self) -> list[KVCache]:
        return self.transformer.new_cache()

    def forward(self, tokens: Tensor, positions: Tensor, padding_mask: Tensor | None = None,
                cache: list[KVCache] | None = None) -> Tensor:
        """Logits ``(B, T, V)`` for ``tokens (B, T)`` at ``positions (2, B, T)``.

        ``padding_mask (B, S)`` marks real tokens over all ``S`` keys (cached ones first); with a
        ``cache`` the new tokens follow the cached ones.
        """
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (B, T); got shape {tuple(tokens.shape)}")
        self.vocab.check_tokens(tokens)
        if positions.shape != (2, *tokens.shape):
            raise ValueError(f"positions must be (2, B, T) = {(2, *tokens.shape)}; got {tuple(positions.shape)}")
        total = tokens.shape[1] + (cache[0].length if cache else 0)
        if total > self.config.context:
            raise ValueError(f"the stream has {total} tokens; this model's context is {self.config.context}")
        if padding_mask is not None and bool(padding_mask.all()):
            padding_mask = None  # nothing padded: causal attention needs no mask (SDPA's causal kernel)
        x = self.embed(tokens)  # (B, T, D)
        x = self.transformer(x, positions, key_padding_mask=padding_mask, causal=True, cache=cache)
        return self.logits(x)  # (B, T, V)

    def loss(self, batch: StreamBatch, on: str = "all") -> Tensor:
        """Mean next-token cross-entropy (float32) over the targets :func:`loss_mask` selects."""
        return next_token_loss(self(batch.tokens, batch.positions, batch.padding_mask), batch, on)

    def pretrained_config(self) -> dict:
        """The :class:`LMConfig` fields that rebuild this model (``save_pretrained``)."""
        return dataclasses.asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "StreamLM":
        """A fresh model from a stored config (keys that are not :class:`LMConfig` fields are ignored)."""
        return cls(LMConfig(**known_fields(config, LMConfig)))


__all__ = ["LMConfig", "StreamLM", "WEIGHTS_KIND", "lm_config_dict", "next_token_loss", "token_losses"]
