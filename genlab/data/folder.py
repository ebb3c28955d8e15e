"""Users' own images: a folder of image files, flat or with one sub-folder per class, and a
deterministic held-out split.

    root/a.png, root/b.jpg, ...                    flat: unlabeled (num_classes = 0)
    root/cats/a.png, root/dogs/b.png, ...          class folders: labels in sorted folder order

The test split is either a second folder (``test_root``, same layout) or a fixed share of the files
(``test_fraction``): the files are sorted, shuffled by a generator seeded with ``split_seed`` and the
last ``round(test_fraction * n)`` (at least one) are held out. The split depends only on the file
names and the seed, so every run, process and evaluation sees the same held-out images and training
never touches them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from genlab.utils import check_choice

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def list_images(root: str | os.PathLike) -> tuple[list[tuple[Path, int]], list[str]]:
    """``([(file, label), ...], classes)`` of a flat folder (label 0, ``classes == []``) or of class
    sub-folders (label = index of the sorted sub-folder name). Files in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root.resolve())!r} does not exist; expected root/<image>.png "
                                "or root/<class>/<image>.png")
    flat = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if flat:
        return [(p, 0) for p in flat], []
    items = [(p, c) for c, name in enumerate(classes) for p in sorted((root / name).rglob("*"))
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise FileNotFoundError(f"image folder {str(root.resolve())!r} holds no images ({', '.join(IMAGE_SUFFIXES)}) "
                                "directly or in class sub-folders")
    return items, classes


class ImageFiles(Dataset):
    """Image files as ``(image (C, H, W) float32 in [-1, 1], label)``, resized (shorter side) and
    center-cropped to ``image_size``, converted to ``channels`` (1: grayscale, 3: RGB)."""

    def __init__(self, items: list[tuple[Path, int]], classes: list[str], image_size: int, channels: int = 3):
        check_choice("channels", channels, [1, 3])
        from genlab.data.vision import _transform

        self.items, self.classes = items, classes
        self.channels, self.num_classes = channels, len(classes)
        self.transform = _transform(image_size, channels)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path, label = self.items[i]
        with Image.open(path) as img:
            img = img.convert("L" if self.channels == 1 else "RGB")
            return self.transform(img), label


def image_folder(root: str, image_size: int = 32, channels: int = 3, split: str = "train", test_fraction: float = 0.1,
                 test_root: str = "", split_seed: int = 0) -> ImageFiles:
    """The ``split`` (``train`` | ``test`` | ``all``) of a folder of images (see the module docstring)."""
    check_choice("split", split, ["train", "test", "all"])
    if test_root:
        items, classes = list_images(test_root if split == "test" else root)
        return ImageFiles(items, classes, image_size, channels)
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} must be in [0, 1)")
    items, classes = list_images(root)
    if split != "all" and test_fraction > 0:
        if len(items) < 2:
            raise ValueError(f"image folder {root!r} holds {len(items)} image; need at least 2 to hold some out "
                             "(or pass test_root)")
        order = torch.randperm(len(items), generator=torch.Generator().manual_seed(split_seed)).tolist()
        n_test = min(max(1, round(test_fraction * len(items))), len(items) - 1)
        chosen = order[-n_test:] if split == "test" else order[:-n_test]
        items = [items[i] for i in sorted(chosen)]
    elif split == "test":
        raise ValueError("test_fraction=0 holds no images out; pass test_fraction > 0 or test_root")
    return ImageFiles(items, classes, image_size, channels)


__all__ = ["IMAGE_SUFFIXES", "ImageFiles", "image_folder", "list_images"]
