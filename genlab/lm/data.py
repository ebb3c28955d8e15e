"""Training streams: captioned digit images and plain text, both offline.

* Captioned digits: an image tokenizer's index grids with their labels; each stream is
  ``BOS caption BEGIN_IMAGE image END_IMAGE EOS`` with a caption template drawn per sample, or
  ``BOS BEGIN_IMAGE image END_IMAGE EOS`` when the caption is dropped (classifier-free guidance).
* Text: UTF-8 bytes cut into windows, by default the dataset descriptions that ship with
  scikit-learn (about 43 KB of English).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlab.lm.captions import caption
from genlab.lm.stream import ImageTokens, StreamBatch, StreamBuilder, collate
from genlab.utils import check_choice, check_positive_int


def captioned_image_batch(builder: StreamBuilder, grids: Tensor, labels: Tensor, templates: Tensor,
                          keep_caption: Tensor) -> StreamBatch:
    """Streams of ``grids (B, h, w)`` captioned by ``caption(labels[b], templates[b])`` where ``keep_caption``."""
    streams = []
    for grid, label, template, keep in zip(grids.cpu(), labels.tolist(), templates.tolist(), keep_caption.tolist()):
        text = [caption(label, template)] if keep else []
        streams.append(builder.build([*text, ImageTokens.from_grid(grid)]))
    return collate(streams)


def default_text() -> str:
    """scikit-learn's dataset descriptions (``sklearn/datasets/descr/*.rst``), sorted by name."""
    import sklearn.datasets

    folder = Path(sklearn.datasets.__file__).parent / "descr"
    return "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.rst")))


class TextWindows(Dataset):
    """Non-overlapping windows of ``length`` byte ids ``(length,)`` long from a UTF-8 text.

    The last ``test_fraction`` of the bytes is the test split; windows never cross the split.
    """

    def __init__(self, text: str, length: int, split: str = "train", test_fraction: float = 0.1):
        check_choice("split", split, ["train", "test"])
        check_positive_int("length", length, minimum=2)
        data = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
        cut = int(len(data) * (1 - test_fraction))
        data = data[:cut] if split == "train" else data[cut:]
        n = len(data) // length
        if n == 0:
            raise ValueError(f"the {split} text has {len(data)} bytes, fewer than one window of {length}")
        self.windows = data[: n * length].view(n, length)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> Tensor:
        return self.windows[i]


def text_batch(tokens: Tensor) -> StreamBatch:
    """A :class:`StreamBatch` of pure text ``tokens (B, T)``: positions ``(n, n)``, i.e. RoPE-1D in every mode."""
    b, t = tokens.shape
    pos = torch.arange(t, dtype=torch.float32, device=tokens.device).expand(2, b, t)
    ones = torch.ones(b, t, dtype=torch.bool, device=tokens.device)
    return StreamBatch(tokens, pos, ones, torch.zeros_like(tokens, dtype=torch.uint8),
                       torch.full((b,), float(t), device=tokens.device), torch.zeros(b, dtype=torch.bool, device=tokens.device))


__all__ = ["TextWindows", "captioned_image_batch", "default_text", "text_batch"]
