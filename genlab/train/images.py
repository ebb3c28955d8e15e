"""Image grids written with torchvision, rounding (not truncating) to uint8."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from genlab.train.io import atomic_path
from genlab.utils import to_uint8


def save_grid(images: Tensor, path: str | Path, nrow: int = 8, padding: int = 2, scale: int | None = None) -> Path:
    """Save ``(B, C, H, W)`` images in ``[-1, 1]`` as one PNG grid (written atomically).

    ``scale`` enlarges each pixel (nearest neighbour) so small images stay readable; by default
    an image is shown about 32 pixels wide (8x8 digits: 4x, 32x32 photos: 1x).
    """
    from torchvision.utils import make_grid
    from PIL import Image

    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W); got shape {tuple(images.shape)}")
    x = to_uint8(images.cpu())
    if scale is None:
        scale = max(1, 32 // max(x.shape[-2:]))
    if scale > 1:
        x = x.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    grid = make_grid(x, nrow=nrow, padding=padding * scale, pad_value=255)
    array = grid[0].numpy() if images.shape[1] == 1 else grid.permute(1, 2, 0).numpy()  # gray stays gray
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return path
