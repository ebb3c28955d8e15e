"""torchvision datasets and ``ImageFolder`` for users with their own data.

Nothing is downloaded at run time: the files must already be under ``root``. When they are
missing, the error says which dataset, where it looked, and how to provide the files.
"""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from genlab.utils import check_choice

TORCHVISION = {"mnist": "MNIST", "cifar10": "CIFAR10", "celeba": "CelebA"}


def _transform(image_size: int, channels: int):
    from torchvision import transforms as T

    steps = [T.Resize(image_size), T.CenterCrop(image_size)]
    if channels == 1:
        steps.append(T.Grayscale(1))
    steps += [T.ToTensor(), T.Normalize([0.5] * channels, [0.5] * channels)]
    return T.Compose(steps)


def torchvision_dataset(name: str, root: str, split: str = "train", image_size: int = 32) -> Dataset:
    """MNIST, CIFAR-10 or CelebA from local files, as ``(image in [-1, 1], label)`` pairs.

    Raises:
        FileNotFoundError: the dataset's files are not under ``root`` (with ``download=True``
            torchvision would fetch them; genlab never downloads at run time).
    """
    check_choice("dataset", name, TORCHVISION)
    check_choice("split", split, ["train", "test"])
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION[name])
    channels = 1 if name == "mnist" else 3
    kwargs = {"split": "train" if split == "train" else "test"} if name == "celeba" else {"train": split == "train"}
    try:
        ds = cls(root=root, download=False, transform=_transform(image_size, channels), **kwargs)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        raise FileNotFoundError(
            f"{TORCHVISION[name]} files were not found under {os.path.abspath(root)!r} ({err}). "
            f"Download them once with torchvision.datasets.{TORCHVISION[name]}(root={root!r}, download=True) on a "
            "machine with internet access and copy the folder here, or use an embedded dataset (digits, photos)."
        ) from None
    ds.channels = channels
    ds.num_classes = 10 if name != "celeba" else 0
    return ds
