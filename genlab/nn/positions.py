"""Positions of every token in a stream that mixes text and images (RoPE-Tie, Su kexue.fm 10040; RoPE-TV, 10352).

A sequence is a list of segments: ``("text", n)`` for ``n`` text tokens and ``("image", h, w)``
for an ``h x w`` grid of image tokens in raster order. Positions have two axes (rows, columns)
and text sits on the diagonal ``(n, n)``, so a 2-axis RoPE with the alternating allocation is
exactly RoPE-1D on pure text. Let ``L`` be the position of the last token before an image
(``-1`` at the start of a sequence):

* ``flatten1d``: every token, image tokens included, takes the next 1-D position.
* ``rope_tie`` (RoPE-Tie v1, Su 10040): patch ``(i, j)`` (1-based row, column) at
  ``(L + i (w + 1), L + j (h + 1))``; the next text token at ``K = L + (w + 1)(h + 1)``.
* ``rope_tv`` (RoPE-TV, Su 10352): patch at ``(b1 + i, b2 + j)`` with ``b1 = L + (wh - h)/2``,
  ``b2 = L + (wh - w)/2``; the next text at ``L + wh + 1`` (an image counts as ``wh`` tokens and
  the gaps before and after it are equal).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from genlab.utils import check_choice

MODES = ["flatten1d", "rope_tie", "rope_tv"]
Segment = tuple  # ("text", n) or ("image", h, w)


def _check_segment(seg: Segment) -> None:
    ok = (isinstance(seg, tuple) and len(seg) >= 2 and seg[0] in ("text", "image")
          and all(isinstance(v, int) and not isinstance(v, bool) for v in seg[1:])
          and ((seg[0] == "text" and len(seg) == 2 and seg[1] >= 0) or (seg[0] == "image" and len(seg) == 3 and min(seg[1:]) >= 1)))
    if not ok:
        raise ValueError(f"segment {seg!r} must be ('text', n >= 0) or ('image', h >= 1, w >= 1)")


def sequence_positions(segments: Sequence[Segment], mode: str = "rope_tie", start: float = 0.0) -> tuple[Tensor, float]:
    """Positions ``(2, T)`` float32 of one sequence and the next free 1-D position."""
    check_choice("mode", mode, MODES)
    rows: list[Tensor] = []
    cols: list[Tensor] = []
    nxt = float(start)
    for seg in segments:
        _check_segment(seg)
        if seg[0] == "text":
            p = torch.arange(seg[1], dtype=torch.float64) + nxt
            rows.append(p)
            cols.append(p)
            nxt += seg[1]
            continue
        h, w = seg[1], seg[2]
        last = nxt - 1  # L: position of the token before the image
        i = torch.arange(1, h + 1, dtype=torch.float64).repeat_interleave(w)
        j = torch.arange(1, w + 1, dtype=torch.float64).repeat(h)
        if mode == "flatten1d":
            p = torch.arange(h * w, dtype=torch.float64) + nxt
            rows.append(p)
            cols.append(p)
            nxt += h * w
        elif mode == "rope_tie":
            rows.append(last + i * (w + 1))
            cols.append(last + j * (h + 1))
            nxt = last + (w + 1) * (h + 1)
        else:
            rows.append(last + (w * h - h) / 2 + i)
            cols.append(last + (w * h - w) / 2 + j)
            nxt = last + w * h + 1
    pos = torch.stack([torch.cat(rows), torch.cat(cols)]) if rows else torch.zeros(2, 0, dtype=torch.float64)
    return pos.float(), nxt


def build_positions(batch: Sequence[Sequence[Segment]], mode: str = "rope_tie") -> tuple[Tensor, Tensor, Tensor]:
    """Positions of a batch of streams, right-padded to the longest.

    Returns:
        positions ``(2, B, T)`` float32 (padding at 0), ``next_pos (B,)`` (the position the next
        generated text token takes) and ``padding_mask (B, T)`` (True for real tokens).
    """
    per_seq = [sequence_positions(segs, mode) for segs in batch]
    length = max((p.shape[1] for p, _ in per_seq), default=0)
    positions = torch.zeros(2, len(batch), length)
    mask = torch.zeros(len(batch), length, dtype=torch.bool)
    for b, (p, _) in enumerate(per_seq):
        positions[:, b, : p.shape[1]] = p
        mask[b, : p.shape[1]] = True
    return positions, torch.tensor([n for _, n in per_seq]), mask
