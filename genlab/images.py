"""Image grids (torchvision, rounding to uint8) and matplotlib figures, written atomically.

Below the method packages (flows, gans, metrics draw their figures with it) and above :mod:`genlab.io`.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from genlab.io import atomic_path
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


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def save_scatter(points: Tensor, path: str | Path, title: str = "", reference: Tensor | None = None,
                 lim: float | None = None) -> Path:
    """A 2-D scatter plot of ``points (N, 2)`` (blue) over optional ``reference`` points (grey).

    ``lim`` bounds both axes to ``[-lim, lim]``; by default 1.1x the reference's extent (3.5 without one).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lim is None:
        lim = 1.1 * float(reference.abs().max()) if reference is not None and len(reference) else 3.5
    fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=100)
    if reference is not None:
        ax.scatter(reference[:, 0], reference[:, 1], s=1, c="0.75", linewidths=0)
    ax.scatter(points[:, 0], points[:, 1], s=1, c="tab:blue", linewidths=0)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["save_figure", "save_grid", "save_scatter"]
