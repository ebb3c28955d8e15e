"""Sampling from a :class:`~genlab.lm.model.StreamLM` with a key/value cache.

Each step samples one token per sequence under the stream's grammar: in text, any byte, ``EOS``
or ``BEGIN_IMAGE``; after ``BEGIN_IMAGE``, exactly ``h * w`` image ids (the logits are restricted to
the image id range), then ``END_IMAGE`` is forced. A :class:`~genlab.lm.stream.PositionCounter`
gives every appended token its RoPE-Tie position (not its index). Temperature, top-k and
nucleus (top-p, Holtzman et al. 2020) filtering apply to the allowed ids; classifier-free
guidance (Ho & Salimans 2022) mixes the log-probabilities of the prompt with those of an
unconditional prompt (the same stream with the text dropped):
``log p = log p_u + g (log p_c - log p_u)``.

    images = text_to_image(model, ["a handwritten seven"] * 8, Sampling(top_k=50, guidance=3.0))
    pixels = image_tokenizer.decode(images)            # (8, C, H, W)
    text = complete_text(model, ["The digits data"], max_new_tokens=40)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.lm.stream import PositionCounter, StreamBatch, StreamBuilder, collate
from genlab.lm.text import BYTES, ByteTokenizer


@dataclass
class Sampling:
    """``temperature`` (0 = greedy), ``top_k`` (0 = off), ``top_p`` (1 = off), CFG ``guidance`` (1 = off).

    Checked when built (and again by :func:`generate`): finite numbers, ``temperature >= 0``,
    ``guidance >= 0``, ``0 < top_p <= 1``, an integer ``top_k >= 0``. Logits are shifted by their
    maximum before the division by the temperature, so any positive temperature is well defined:
    as it tends to 0 sampling tends to greedy (ties at the maximum share the mass), and
    ``temperature = 0`` is exactly greedy (``argmax``).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    guidance: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("temperature", "top_p", "guidance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name}={value!r} must be a number, not {type(value).__name__}")
            if not math.isfinite(value):
                raise ValueError(f"{name}={value!r} must be finite")
        if not self.temperature >= 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0 (0 = greedy)")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, numbers.Integral) or self.top_k < 0:
            raise ValueError(f"top_k={self.top_k!r} must be an integer >= 0 (0 = off)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1] (1 = off)")
        if not self.guidance >= 0:
            raise ValueError(f"guidance={self.guidance} must be >= 0 (1 = off)")


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set all but the ``top_k`` largest and the smallest set with mass >= ``top_p`` to ``-inf``; ``(B, V)``."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, -1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        sorted_logits, order = logits.sort(-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sample_logits(logits: Tensor, sampling: Sampling, generator: torch.Generator | None = None) -> Tensor:
    """One token per row of ``logits (B, V)`` (float32, disallowed ids at ``-inf``).

    Every row needs a finite maximum (an allowed id, no NaN or +Inf): otherwise ``ValueError``
    (e.g. a huge ``guidance`` overflowing float32).
    """
    top = logits.max(-1, keepdim=True).values  # (B, 1)
    if not torch.isfinite(top).all():
        raise ValueError(f"logits hold NaN or +Inf, or a row allows no token (row maxima {top[:, 0].tolist()[:8]}); "
                         f"with guidance={sampling.guidance} and temperature={sampling.temperature} they must stay "
                         "finite in float32")
    if sampling.temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits((logits - top) / sampling.temperature, sampling.top_k, sampling.top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]


def _allowed(model, counter: PositionCounter, allow_images: bool) -> Tensor:
    """``(B, V)`` bool: the ids the grammar allows next for each sequence."""
    vocab, text = model.vocab, model.vocab.text
    ids = torch.arange(vocab.size, device=counter.next.device)
    text_ok = (ids < BYTES) | (ids == text.EOS)
    if allow_images and vocab.image_codebook_size:
        text_ok = text_ok | (ids == text.BEGIN_IMAGE)
    image_ok, end_ok = vocab.is_image(ids), ids == text.END_IMAGE
    in_image, closing = counter.in_image[:, None], counter.closing[:, None]
    return torch.where(in_image, image_ok, torch.where(closing, end_ok, text_ok))


def _stack(a: StreamBatch, b: StreamBatch) -> StreamBatch:
    """Rows of ``a`` then ``b``, right-padded to the wider of the two."""
    width = max(a.tokens.shape[1], b.tokens.shape[1])

    def pad(x: StreamBatch) -> StreamBatch:
        extra = width - x.tokens.shape[1]
        return StreamBatch(F.pad(x.tokens, (0, extra), value=ByteTokenizer.PAD), F.pad(x.positions, (0, extra)),
                           F.pad(x.padding_mask, (0, extra)), F.pad(x.kinds, (0, extra)), x.next_pos, x.open_image)

    a, b = pad(a), pad(b)  # positions are (2, B, T): their batch axis is 1
    return StreamBatch(*(torch.cat([x, y], 1 if name == "positions" else 0) for name, x, y in zip(StreamBatch._fields, a, b)))


@torch.no_grad()
def generate(model, prompts: StreamBatch, max_new_tokens: int, sampling: Sampling | None = None,
             unconditional: StreamBatch | None = None, stop_at: Sequence[int] = (ByteTokenizer.EOS,),
             allow_images: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """New tokens ``(B, max_new_tokens)`` after each prompt; ``PAD`` after a sequence stops.

    Args:
        model: a :class:`~genlab.lm.model.StreamLM`.
        prompts: right-padded prompt streams (e.g. ending with ``BEGIN_IMAGE``).
        max_new_tokens: tokens to sample; the longest prompt plus this must fit the context.
        sampling: temperature, top-k, top-p and guidance.
        unconditional: prompts for classifier-free guidance, one per prompt, in the same
            image state (both open an image or neither); needed when ``guidance != 1``.
        stop_at: ids that end a sequence (``EOS``; ``END_IMAGE`` to stop after one image).
        allow_images: whether text may open an image with ``BEGIN_IMAGE``.
        generator: random generator for reproducible samples.
    """
    sampling = sampling or Sampling()
    sampling.validate()
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an integer >= 1")
    b = prompts.tokens.shape[0]
    if not prompts.padding_mask.any(1).all():
        raise ValueError("every prompt needs at least one token (BOS)")
    guided = sampling.guidance != 1
    if guided:
        if unconditional is None or unconditional.tokens.shape[0] != b:
            raise ValueError(f"guidance={sampling.guidance} needs `unconditional` prompts, one per prompt ({b})")
        if not torch.equal(unconditional.open_image, prompts.open_image):
            raise ValueError("unconditional prompts must open an image exactly where the prompts do")
        prompts = _stack(prompts, unconditional)
    longest = int(prompts.lengths.max())
    context = model.config.context
    if prompts.tokens.shape[1] + max_new_tokens > context:
        raise ValueError(f"the longest prompt has {longest} tokens; with max_new_tokens={max_new_tokens} it needs "
                         f"{prompts.tokens.shape[1] + max_new_tokens} > the model's context {context}")
    device = next(model.parameters()).device
    prompts = prompts.to(device)
    rows = prompts.tokens.shape[0]
    counter = PositionCounter(model.vocab, prompts.next_pos, prompts.open_image, model.grid, model.config.positions)
    cache = model.new_cache()
    logits = model(prompts.tokens, prompts.positions, prompts.padding_mask, cache)
    logits = logits[torch.arange(rows, device=device), prompts.lengths - 1].float()  # (rows, V)
    mask = prompts.padding_mask
    finished = torch.zeros(b, dtype=torch.bool, device=device)
    stop = torch.tensor(list(stop_at), device=device)
    out = []
    for step in range(max_new_tokens):
        logp = logits.log_softmax(-1)
        if guided:
            logp = logp[b:] + sampling.guidance * (logp[:b] - logp[b:])
        logp = logp.masked_fill(~_allowed(model, counter, allow_images)[:b], float("-inf"))
        token = sample_logits(logp, sampling, generator)
        token = torch.where(finished, ByteTokenizer.PAD, token)  # (B,)
        out.append(token)
        active = ~finished
        finished = finished | torch.isin(token, stop)
        if step == max_new_tokens - 1 or finished.all():
            break
        feed, feed_active = (token.repeat(2), active.repeat(2)) if guided else (token, active)
        positions = counter.advance(feed, feed_active)  # (2, rows)
        mask = torch.cat([mask, feed_active[:, None]], 1)
        logits = model(feed[:, None], positions[:, :, None], mask, cache)[:, -1].float()
    tokens = torch.stack(out, 1)
    return F.pad(tokens, (0, max_new_tokens - tokens.shape[1]), value=ByteTokenizer.PAD)


def text_to_image(model, prompts: Sequence[str], sampling: Sampling | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
    """Image tokenizer indices ``(B, h, w)`` for text prompts; decode with ``ImageTokenizer.decode``.

    Each prompt becomes ``BOS text BEGIN_IMAGE``; with guidance the unconditional prompt is
    ``BOS BEGIN_IMAGE`` (the text dropped, as in training).
    """
    if isinstance(prompts, str) or not prompts:
        raise TypeError("prompts must be a non-empty list of strings")
    if not model.vocab.image_codebook_size:
        raise ValueError("this model has no image ids (image_codebook_size=0); it was trained on text only")
    sampling = sampling or Sampling()
    builder = StreamBuilder(model.vocab, model.config.positions)
    cond = collate([builder.build([p], eos=False, begin_image=True) for p in prompts])
    uncond = collate([builder.build([], eos=False, begin_image=True)] * len(prompts)) if sampling.guidance != 1 else None
    h, w = model.grid
    tokens = generate(model, cond, h * w + 1, sampling, uncond, stop_at=(ByteTokenizer.END_IMAGE,), generator=generator)
    return model.vocab.tokens_to_image(tokens[:, : h * w]).view(-1, h, w)


def complete_text(model, prompts: Sequence[str], max_new_tokens: int, sampling: Sampling | None = None,
                  generator: torch.Generator | None = None) -> list[str]:
    """Text continuations (up to ``EOS``) of text prompts; no images are opened."""
    if isinstance(prompts, str) or not prompts:
        raise TypeError("prompts must be a non-empty list of strings")
    builder = StreamBuilder(model.vocab, model.config.positions)
    batch = collate([builder.build([p], eos=False) for p in prompts])
    tokens = generate(model, batch, max_new_tokens, sampling, allow_images=False, generator=generator)
    text = model.vocab.text
    return [text.decode([t for t in row if t < BYTES], errors="replace") for row in tokens.tolist()]


__all__ = ["Sampling", "complete_text", "filter_logits", "generate", "sample_logits", "text_to_image"]
