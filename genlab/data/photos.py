"""Natural-image patches cut from the color photographs bundled with scikit-image.

Ships inside scikit-image, so it works offline. Each photo is scaled so its longer side is at
most 512 pixels. The right-most fifth of every photo is held out (or the right-most ``S`` columns for
crops of side ``S`` wider than that fifth, e.g. 128): training crops come only from the columns left of
the strip, and the test split is a fixed set of crops from inside the held-out strip.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from genlab.utils import check_choice

PHOTO_NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)
TEST_FRACTION = 0.2
MAX_SIDE = 512


@lru_cache(maxsize=1)
def load_photos() -> tuple[Tensor, ...]:
    """The photos as float32 ``(3, H, W)`` tensors in ``[-1, 1]``, longer side <= 512."""
    import skimage.data

    photos = []
    for name in PHOTO_NAMES:
        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo pair: keep the left view
            image = image[0]
        x = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).float() / 127.5 - 1
        scale = MAX_SIDE / max(x.shape[1:])
        if scale < 1:
            size = (round(x.shape[1] * scale), round(x.shape[2] * scale))
            x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        photos.append(x.clamp(-1, 1).contiguous())
    return tuple(photos)


MAX_CROP = 128


def _split_width(width: int, image_size: int = 0) -> int:
    """First column of the held-out strip: a fifth of the width, or ``image_size`` columns if wider."""
    return min(int(round(width * (1 - TEST_FRACTION))), width - image_size)


class PhotoPatches(Dataset):
    """Random (train) or fixed (test) ``(3, S, S)`` crops in ``[-1, 1]``; items are ``(patch, 0)``.

    Train item ``i`` is a deterministic function of ``(seed, i)`` (photo chosen in proportion to
    its training area, crop position, horizontal flip), so a resumed run sees the same data.
    The test split is up to ``test_per_photo`` crops per photo on a fixed grid over the held-out strip
    (rows at least ``S/8`` pixels apart, so large crops do not repeat each other).

    Args:
        split: ``"train"`` or ``"test"``.
        image_size: crop side ``S``.
        length: number of train items (an epoch); ignored for the test split.
        test_per_photo: test crops per photo.
        seed: seed of the train crops.
    """

    num_classes = 0
    channels = 3

    def __init__(self, split: str = "train", image_size: int = 32, length: int = 100_000,
                 test_per_photo: int = 128, seed: int = 0):
        check_choice("split", split, ["train", "test"])
        if isinstance(image_size, bool) or not isinstance(image_size, int) or not 4 <= image_size <= MAX_CROP:
            raise ValueError(f"image_size={image_size!r} must be an integer in [4, {MAX_CROP}]")
        self.split, self.image_size, self.seed = split, image_size, seed
        self.photos = load_photos()
        if split == "train":
            self.length = length
            areas = np.array([(_split_width(p.shape[2], image_size) - image_size) * (p.shape[1] - image_size) for p in self.photos], float)
            self.weights = areas / areas.sum()
        else:
            self.test_patches = self._test_grid(test_per_photo)
            self.length = len(self.test_patches)

    def _test_grid(self, per_photo: int) -> Tensor:
        s = self.image_size
        patches = []
        for p in self.photos:
            h, w = p.shape[1:]
            x0 = _split_width(w, s)
            cols = max(1, (w - x0) // s)
            rows = max(1, min(per_photo // cols, (h - s) // max(1, s // 8) + 1))  # rows at least S/8 pixels apart
            ys = np.linspace(0, h - s, rows).round().astype(int)
            xs = np.linspace(x0, w - s, cols).round().astype(int)
            crops = [p[:, y:y + s, x:x + s] for y in ys for x in xs][:per_photo]
            patches.extend(crops)
        return torch.stack(patches)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        if self.split == "test":
            return self.test_patches[i], 0
        photo, y, x, flip = self.crop_box(i)
        s = self.image_size
        patch = self.photos[photo][:, y:y + s, x:x + s]
        return (patch.flip(-1) if flip else patch).contiguous(), 0

    def crop_box(self, i: int) -> tuple[int, int, int, bool]:
        """``(photo index, top, left, horizontal flip)`` of train item ``i``."""
        if not 0 <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} train patches")
        rng = np.random.default_rng((self.seed, i))
        photo = int(rng.choice(len(self.photos), p=self.weights))
        h, w = self.photos[photo].shape[1:]
        s = self.image_size
        y = int(rng.integers(0, h - s + 1))
        x = int(rng.integers(0, _split_width(w, s) - s + 1))
        return photo, y, x, bool(rng.random() < 0.5)
