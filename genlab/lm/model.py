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
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.io import PretrainedMixin, known_fields
from genlab.lm.stream import StreamBatch, Vocabulary, loss_mask
from genlab.nn.attention import KVCache
from genlab.nn.positions import MODES
from genlab.nn.rope import RotaryEmbedding
from genlab.nn.transformer import Transformer
from genlab.utils import check_choice, check_positive_int

WEIGHTS_KIND = "StreamLM"


@dataclass
class LMConfig:
    """Architecture of a :class:`StreamLM` (fields shared with ``scripts/train_lm.py``)."""

    image_codebook_size: int = 0  # image ids after the text ids; 0 = a text-only model
    image_grid: list[int] = field(default_factory=lambda: [4, 4])  # (h, w) of every image in the stream
    positions: str = "rope_tie"  # rope_tie | rope_tv | flatten1d
    context: int = 64  # most tokens a stream (prompt plus generated tokens) may hold
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mixer: str = "attention"  # attention | gau
    norm: str = "pre"  # pre | post
    mlp_ratio: float = 4.0  # attention blocks' MLP width
    qk_dim: int = 64  # GAU's shared query/key width s
    dropout: float = 0.0
    rope_base: float = 10000.0

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
        mixer_kwargs = {"qk_dim": cfg.qk_dim} if cfg.mixer == "gau" else {}
        self.embed = nn.Embedding(self.vocab.size, cfg.dim)
        self.transformer = Transformer(cfg.dim, cfg.depth, cfg.heads, cfg.mixer, cfg.norm,
                                       rope=RotaryEmbedding(rope_dim, cfg.rope_base, n_axes=2),
                                       mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout, **mixer_kwargs)
        self.head = nn.Linear(cfg.dim, self.vocab.size, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style: N(0, 0.02) embeddings and head (the stack initialises itself)."""
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)

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
        return self.head(x)  # (B, T, V)

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
