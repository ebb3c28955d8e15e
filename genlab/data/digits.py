"""scikit-learn's handwritten digits (1797 real 8x8 images, 17 gray levels), resized.

Ships inside scikit-learn, so it works offline. The split is fixed: every fifth image (index
``i % 5 == 4``) is the test set (359 images), the rest train (1438 images).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from genlab.utils import check_choice

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@lru_cache(maxsize=8)
def load_digits_tensors(split: str = "train", image_size: int = 16) -> tuple[Tensor, Tensor]:
    """Return ``(images, labels)``: ``(N, 1, S, S)`` float32 in ``[-1, 1]`` and ``(N,)`` long.

    Args:
        split: ``"train"`` (1438 images), ``"test"`` (359) or ``"all"`` (1797).
        image_size: output side ``S`` (8 keeps the originals; larger sizes use bilinear
            interpolation with antialiasing off, since it only upsamples).
    """
    check_choice("split", split, ["train", "test", "all"])
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size={image_size!r} must be a positive integer")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().div(16).mul(2).sub(1).unsqueeze(1)  # (N, 1, 8, 8)
    labels = torch.from_numpy(bunch.target).long()
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
        images = images.clamp(-1, 1)
    index = torch.arange(len(labels))
    if split == "train":
        keep = index % 5 != 4
    elif split == "test":
        keep = index % 5 == 4
    else:
        keep = torch.ones_like(index, dtype=torch.bool)
    return images[keep].contiguous(), labels[keep].contiguous()


class Digits(Dataset):
    """Map-style dataset of ``(image (1, S, S) in [-1, 1], label)`` pairs; see the module doc."""

    num_classes = 10
    channels = 1

    def __init__(self, split: str = "train", image_size: int = 16):
        self.images, self.labels = load_digits_tensors(split, image_size)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.images[i], self.labels[i]
