"""One token stream for text and images: shared vocabulary, RoPE-Tie positions, batches, loss masks.

A stream is ``BOS text BEGIN_IMAGE i_1 ... i_hw END_IMAGE text ... EOS``: text as byte ids, each
image as its tokenizer indices in raster order, shifted into their own id range after the text
ids (:class:`Vocabulary`). ``BEGIN_IMAGE``/``END_IMAGE`` are text tokens. Every token gets a
2-axis position from :func:`genlab.nn.positions.sequence_positions`: in
``rope_tie`` mode text sits on the diagonal ``(n, n)``, image patch ``(i, j)`` (1-based) after text
ending at ``(L, L)`` at ``(L + i (w + 1), L + j (h + 1))`` and the text after it continues at
``L + (w + 1)(h + 1)``; ``flatten1d`` numbers every token 1-D; ``rope_tv`` is RoPE-Tie v2.

    vocab = Vocabulary(image_codebook_size=240)
    builder = StreamBuilder(vocab, mode="rope_tie")
    s = builder.build(["a handwritten seven", ImageTokens.from_grid(ids)])   # ids (4, 4) from the tokenizer
    batch = collate([s, builder.build(["only text"])])                     # right-padded StreamBatch
    mask = loss_mask(batch, on="image")                                    # which next-token targets count

Decoding continues the positions with :class:`PositionCounter`, one counter per sequence: once an
image has been seen a token's position is no longer its index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from genlab.lm.text import ByteTokenizer
from genlab.nn.positions import MODES, sequence_positions
from genlab.utils import check_choice, check_positive_int

TEXT, IMAGE = 0, 1  # token kinds
LOSS_ON = ["all", "text", "image"]


@dataclass(frozen=True)
class Vocabulary:
    """Text ids ``[0, text.vocab_size)`` then image ids ``[image_offset, size)``, one per tokenizer code."""

    image_codebook_size: int
    text: ByteTokenizer = field(default_factory=ByteTokenizer)

    def __post_init__(self):
        check_positive_int("image_codebook_size", self.image_codebook_size, minimum=0)  # 0: text only

    @property
    def image_offset(self) -> int:
        return self.text.vocab_size

    @property
    def size(self) -> int:
        return self.text.vocab_size + self.image_codebook_size

    def image_to_tokens(self, indices: Tensor) -> Tensor:
        """Stream ids of tokenizer indices (any shape)."""
        if indices.is_floating_point() or indices.is_complex():
            raise TypeError(f"image indices must be an integer tensor; got {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.image_codebook_size):
            raise ValueError(f"image indices must lie in [0, {self.image_codebook_size}); got values in "
                             f"[{indices.min().item()}, {indices.max().item()}]")
        return indices.long() + self.image_offset

    def tokens_to_image(self, tokens: Tensor) -> Tensor:
        """Tokenizer indices of stream ids that must all be image ids."""
        if tokens.numel() and not self.is_image(tokens).all():
            bad = tokens[~self.is_image(tokens)][:5].tolist()
            raise ValueError(f"tokens must be image ids in [{self.image_offset}, {self.size}); got {bad}")
        return tokens.long() - self.image_offset

    def is_image(self, tokens: Tensor) -> Tensor:
        return (tokens >= self.image_offset) & (tokens < self.size)

    def check_tokens(self, tokens: Tensor, name: str = "tokens") -> None:
        """Raise ``ValueError`` unless every id lies in ``[0, size)``."""
        if tokens.is_floating_point():
            raise TypeError(f"{name} must be an integer tensor; got {tokens.dtype}")
        if tokens.numel():
            low, high = torch.stack(torch.aminmax(tokens)).tolist()  # one host synchronisation
            if low < 0 or high >= self.size:
                raise ValueError(f"{name} must be ids in [0, {self.size}) (text then image ids); got values in "
                                 f"[{low}, {high}]")


@dataclass(frozen=True)
class ImageTokens:
    """Tokenizer indices of one image in raster order: ``indices (h * w,)`` on an ``h x w`` grid."""

    indices: Tensor
    height: int
    width: int

    def __post_init__(self):
        check_positive_int("height", self.height)
        check_positive_int("width", self.width)
        if self.indices.ndim != 1:
            raise ValueError(f"ImageTokens.indices must be 1-D (raster order); got shape {tuple(self.indices.shape)}")
        if self.indices.numel() != self.height * self.width:
            raise ValueError(f"image has {self.indices.numel()} tokens but its grid {self.height} x {self.width} "
                             f"needs {self.height * self.width}")

    @classmethod
    def from_grid(cls, indices: Tensor) -> "ImageTokens":
        """From a tokenizer's ``(h, w)`` index grid (``ImageTokenizer.encode(x)[b]``)."""
        if indices.ndim != 2:
            raise ValueError(f"an image grid must be (h, w); got shape {tuple(indices.shape)}")
        return cls(indices.reshape(-1), indices.shape[0], indices.shape[1])


class Stream(NamedTuple):
    """One sequence: ``tokens (T,)`` long, ``positions (2, T)`` float32, ``kinds (T,)`` (0 text, 1 image),
    ``segments`` (for :func:`~genlab.nn.positions.sequence_positions`), ``next_pos`` (the position
    the next text token takes) and ``open_image`` (it ends with ``BEGIN_IMAGE``)."""

    tokens: Tensor
    positions: Tensor
    kinds: Tensor
    segments: list
    next_pos: float
    open_image: bool


class StreamBatch(NamedTuple):
    """Right-padded streams: ``tokens (B, T)``, ``positions (2, B, T)``, ``padding_mask (B, T)``
    (True for real tokens), ``kinds (B, T)``, ``next_pos (B,)``, ``open_image (B,)`` bool."""

    tokens: Tensor
    positions: Tensor
    padding_mask: Tensor
    kinds: Tensor
    next_pos: Tensor
    open_image: Tensor

    @property
    def lengths(self) -> Tensor:
        return self.padding_mask.sum(1)

    def to(self, device: torch.device | str) -> "StreamBatch":
        return StreamBatch(*(t.to(device) for t in self))


class StreamBuilder:
    """Interleave text and images into a :class:`Stream` with a shared vocabulary and 2-D positions.

    Args:
        vocab: the shared :class:`Vocabulary`.
        mode: positions, one of ``genlab.nn.positions.MODES`` (``rope_tie`` by default).
    """

    def __init__(self, vocab: Vocabulary, mode: str = "rope_tie"):
        check_choice("mode", mode, MODES)
        self.vocab, self.mode = vocab, mode

    def build(self, items: Sequence[str | ImageTokens], bos: bool = True, eos: bool = True,
              begin_image: bool = False) -> Stream:
        """Stream of ``items`` (strings and :class:`ImageTokens`, in order).

        ``begin_image=True`` ends the stream with ``BEGIN_IMAGE`` (and no ``EOS``): a prompt that
        a model continues with the tokens of an image.
        """
        if isinstance(items, (str, ImageTokens)):
            raise TypeError("items must be a sequence of strings and ImageTokens; wrap a single item in a list")
        if begin_image and eos:
            raise ValueError("begin_image=True leaves the image open; pass eos=False")
        text = self.vocab.text
        chunks: list[Tensor] = []
        kinds: list[int] = []
        segments: list[tuple] = []
        pending: list[int] = [text.BOS] if bos else []  # text ids not yet closed into a segment

        def flush() -> None:
            if pending:
                chunks.append(torch.tensor(pending, dtype=torch.long))
                kinds.extend([TEXT] * len(pending))
                segments.append(("text", len(pending)))
                pending.clear()

        for k, item in enumerate(items):
            if isinstance(item, str):
                pending.extend(text.encode(item))
            elif isinstance(item, ImageTokens):
                pending.append(text.BEGIN_IMAGE)
                flush()
                chunks.append(self.vocab.image_to_tokens(item.indices.cpu()))
                kinds.extend([IMAGE] * item.indices.numel())
                segments.append(("image", item.height, item.width))
                pending.append(text.END_IMAGE)
            else:
                raise TypeError(f"items[{k}] must be a str or ImageTokens; got {type(item).__name__}")
        if begin_image:
            pending.append(text.BEGIN_IMAGE)
        if eos:
            pending.append(text.EOS)
        flush()
        tokens = torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.long)
        positions, next_pos = sequence_positions(segments, self.mode)
        return Stream(tokens, positions, torch.tensor(kinds, dtype=torch.uint8), segments, next_pos, begin_image)

    def parse(self, tokens: Tensor, grid: tuple[int, int]) -> list[str | ImageTokens]:
        """Split stream ids back into strings and :class:`ImageTokens` on an ``h x w`` ``grid``.

        ``BOS``/``EOS``/``PAD`` are dropped; text decodes with ``errors="replace"`` (sampled bytes
        need not be UTF-8). Raises ``ValueError`` when an image does not hold exactly ``h * w``
        image ids or is not closed.
        """
        self.vocab.check_tokens(tokens)
        text, (h, w) = self.vocab.text, grid
        items: list[str | ImageTokens] = []
        ids = tokens.tolist()
        i, run = 0, []
        while i < len(ids):
            t = ids[i]
            if t != text.BEGIN_IMAGE:
                if t < text.vocab_size and t not in (text.BOS, text.EOS, text.PAD, text.END_IMAGE):
                    run.append(t)
                elif t >= text.vocab_size or t == text.END_IMAGE:
                    raise ValueError(f"token {t} at index {i} is outside an image (no BEGIN_IMAGE before it)")
                i += 1
                continue
            if run:
                items.append(text.decode(run, errors="replace"))
                run = []
            end = i + 1 + h * w
            body = tokens[i + 1:end]
            if end >= len(ids) or ids[end] != text.END_IMAGE or not self.vocab.is_image(body).all():
                raise ValueError(f"the image at index {i} must be {h * w} image ids then END_IMAGE (grid {h} x {w})")
            items.append(ImageTokens(self.vocab.tokens_to_image(body), h, w))
            i = end + 1
        if run:
            items.append(text.decode(run, errors="replace"))
        return items


def collate(streams: Sequence[Stream], pad_id: int = ByteTokenizer.PAD) -> StreamBatch:
    """Right-pad streams into a :class:`StreamBatch` (padding: ``pad_id``, position 0, masked out)."""
    if not streams:
        raise ValueError("collate needs at least one stream")
    b, length = len(streams), max(len(s.tokens) for s in streams)
    tokens = torch.full((b, length), pad_id, dtype=torch.long)
    positions = torch.zeros(2, b, length)
    mask = torch.zeros(b, length, dtype=torch.bool)
    kinds = torch.zeros(b, length, dtype=torch.uint8)
    for i, s in enumerate(streams):
        n = len(s.tokens)
        tokens[i, :n], positions[:, i, :n], mask[i, :n], kinds[i, :n] = s.tokens, s.positions, True, s.kinds
    next_pos = torch.tensor([s.next_pos for s in streams], dtype=torch.float32)
    open_image = torch.tensor([s.open_image for s in streams])
    return StreamBatch(tokens, positions, mask, kinds, next_pos, open_image)


def loss_mask(batch: StreamBatch, on: str = "all") -> Tensor:
    """Which next-token targets ``tokens[:, 1:]`` count, ``(B, T - 1)`` bool: real tokens of the chosen kind."""
    check_choice("on", on, LOSS_ON)
    mask = batch.padding_mask[:, 1:]
    if on == "all":
        return mask
    return mask & (batch.kinds[:, 1:] == (IMAGE if on == "image" else TEXT))


class PositionCounter:
    """Positions of tokens appended one at a time, one counter per sequence.

    Text tokens take ``(p, p)`` and advance ``p`` by one; after ``BEGIN_IMAGE`` the next ``h * w``
    tokens must be image ids and take the image positions of ``mode`` for an image starting at
    ``p``; after the last of them ``p`` jumps past the image and ``END_IMAGE`` must follow. Positions equal what
    :class:`StreamBuilder` gives the whole stream at once.

    Args:
        vocab: the stream vocabulary (to tell image ids from text ids).
        next_pos: ``(B,)`` the position of each sequence's next token (``StreamBatch.next_pos``).
        open_image: ``(B,)`` bool, sequences whose prompt ends with ``BEGIN_IMAGE``.
        grid: ``(h, w)`` of generated images.
        mode: a position mode of :mod:`genlab.nn.positions`.
    """

    def __init__(self, vocab: Vocabulary, next_pos: Tensor, open_image: Tensor, grid: tuple[int, int], mode: str):
        check_choice("mode", mode, MODES)
        h, w = check_positive_int("grid height", grid[0]), check_positive_int("grid width", grid[1])
        self.vocab, self.size = vocab, h * w
        offsets, span = sequence_positions([("image", h, w)], mode, start=0.0)  # translation-invariant in start
        self.offsets = offsets.to(next_pos.device)  # (2, h*w)
        self.span = span
        self.next = next_pos.float().clone()
        self.image_start = self.next.clone()
        self.image_step = torch.where(open_image.to(next_pos.device), 0, -1).long()  # -1: in text
        self.closing = torch.zeros_like(self.image_step, dtype=torch.bool)  # the next token must be END_IMAGE

    @property
    def in_image(self) -> Tensor:
        """``(B,)`` bool: the next token must be an image id."""
        return self.image_step >= 0

    def advance(self, tokens: Tensor, active: Tensor | None = None) -> Tensor:
        """Positions ``(2, B)`` of ``tokens (B,)``, then step the counters of ``active`` sequences."""
        active = torch.ones_like(tokens, dtype=torch.bool) if active is None else active
        in_image = self.in_image
        is_image = self.vocab.is_image(tokens)
        end = self.vocab.text.END_IMAGE
        wrong = active & ((in_image != is_image) | (self.closing != (tokens == end)))
        if wrong.any():
            b = int(wrong.nonzero()[0])
            expected = "an image id" if in_image[b] else "END_IMAGE" if self.closing[b] else "a text id other than END_IMAGE"
            raise ValueError(f"sequence {b}: token {int(tokens[b])} must be {expected} here "
                             f"(an image is BEGIN_IMAGE, exactly {self.size} image ids, END_IMAGE)")
        step = self.image_step.clamp_min(0)
        image_pos = self.image_start[None] + self.offsets[:, step]  # (2, B)
        positions = torch.where(in_image[None], image_pos, self.next[None].expand(2, -1))
        text_step = active & ~in_image
        begins = text_step & (tokens == self.vocab.text.BEGIN_IMAGE)
        self.next = torch.where(text_step, self.next + 1, self.next)
        self.image_step = torch.where(active & in_image, self.image_step + 1, self.image_step)
        done = active & in_image & (self.image_step == self.size)
        self.closing = torch.where(active, done, self.closing)
        self.next = torch.where(done, self.image_start + self.span, self.next)
        self.image_step = torch.where(done, -1, self.image_step)
        self.image_start = torch.where(begins, self.next, self.image_start)
        self.image_step = torch.where(begins, 0, self.image_step)
        return positions


__all__ = ["IMAGE", "ImageTokens", "LOSS_ON", "PositionCounter", "Stream", "StreamBatch", "StreamBuilder", "TEXT",
           "Vocabulary", "collate", "loss_mask"]
