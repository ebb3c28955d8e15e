"""Datasets that work offline (digits, photos, toy2d) and loaders for users' own data.

Every image dataset yields ``(image (C, H, W) float32 in [-1, 1], label)`` and exposes
``channels`` and ``num_classes``; ``build_image_dataset`` picks one by name.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from genlab.data.digits import DIGIT_NAMES, Digits, load_digits_tensors
from genlab.data.photos import PhotoPatches, load_photos
from genlab.data.toy2d import TOY2D, Toy2D, mixture, sample_toy2d
from genlab.data.folder import ImageFiles, image_folder
from genlab.data.vision import TORCHVISION, torchvision_dataset

IMAGE_DATASETS = ["digits", "photos", *TORCHVISION, "folder"]


def build_image_dataset(name: str, split: str = "train", image_size: int = 32, root: str = "data", **kwargs) -> Dataset:
    """Image dataset by name: ``digits``, ``photos``, ``mnist``, ``cifar10``, ``celeba`` or ``folder``.

    ``root`` is where torchvision datasets live, or the image folder for ``folder`` (flat or with class
    sub-folders; :func:`~genlab.data.folder.image_folder`). Extra keyword arguments go to the dataset
    (``length`` and ``seed`` for photos; ``channels``, ``test_fraction``, ``test_root`` for folder).
    """
    if name == "digits":
        return Digits(split, image_size)
    if name == "photos":
        return PhotoPatches(split, image_size, **kwargs)
    if name in TORCHVISION:
        return torchvision_dataset(name, root, split, image_size)
    if name == "folder":
        return image_folder(root, image_size, split=split, **kwargs)
    raise ValueError(f"dataset={name!r} is not supported; expected one of {IMAGE_DATASETS}")


__all__ = [
    "DIGIT_NAMES", "Digits", "ImageFiles", "IMAGE_DATASETS", "PhotoPatches", "TOY2D", "TORCHVISION", "Toy2D",
    "build_image_dataset", "image_folder", "load_digits_tensors", "load_photos", "mixture",
    "sample_toy2d", "torchvision_dataset",
]
