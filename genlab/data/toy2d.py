"""Generated 2-D distributions with exact references (the GAN / flow-matching toy protocol).

``8gaussians``: 8 equal-weight isotropic gaussians on a circle of radius 2, sigma 0.02.
``25gaussians``: the 5 x 5 grid ``{-4, -2, 0, 2, 4}^2``, sigma 0.05.
``moons``, ``checkerboard``, ``rings``, ``spirals``: the shapes used by TorchCFM and FFJORD,
scaled to roughly ``[-4, 4]^2``. Sampling is exact, so a fresh sample is always a valid reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from genlab.utils import check_choice


@dataclass(frozen=True)
class GaussianMixture:
    """Equal-weight isotropic mixture: ``modes (K, 2)`` and a shared ``std``."""

    modes: Tensor
    std: float


def mixture(name: str) -> GaussianMixture:
    """The mode centres and sigma of ``8gaussians`` or ``25gaussians``."""
    if name == "8gaussians":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return GaussianMixture(2.0 * torch.stack([angles.cos(), angles.sin()], 1).float(), 0.02)
    if name == "25gaussians":
        grid = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return GaussianMixture(torch.cartesian_prod(grid, grid), 0.05)
    raise ValueError(f"{name!r} is not a gaussian mixture; expected '8gaussians' or '25gaussians'")


def _gaussians(name: str, n: int, g: torch.Generator) -> Tensor:
    m = mixture(name)
    k = torch.randint(len(m.modes), (n,), generator=g)
    return m.modes[k] + m.std * torch.randn(n, 2, generator=g)


def _moons(n: int, g: torch.Generator) -> Tensor:
    upper = torch.rand(n, generator=g) < 0.5
    t = torch.rand(n, generator=g) * math.pi
    x = torch.where(upper, t.cos(), 1 - t.cos())
    y = torch.where(upper, t.sin(), 0.5 - t.sin())
    pts = torch.stack([x, y], 1) + 0.05 * torch.randn(n, 2, generator=g)
    return (pts - torch.tensor([0.5, 0.25])) * 2.5


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    x1 = torch.rand(n, generator=g) * 4 - 2
    x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g).float() * 2
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack([x1, x2], 1) * 2


def _rings(n: int, g: torch.Generator) -> Tensor:
    radius = torch.randint(1, 5, (n,), generator=g).float()  # 4 rings, radii 1..4
    angle = torch.rand(n, generator=g) * 2 * math.pi
    pts = torch.stack([angle.cos(), angle.sin()], 1) * radius[:, None]
    return pts + 0.08 * torch.randn(n, 2, generator=g)


def _spirals(n: int, g: torch.Generator) -> Tensor:
    t = torch.sqrt(torch.rand(n, generator=g)) * 540 * (2 * math.pi / 360)
    arm = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1  # two arms, point symmetric
    pts = torch.stack([-t.cos() * t, t.sin() * t], 1) * arm[:, None]
    return pts / 3 + 0.1 * torch.randn(n, 2, generator=g)


TOY2D = {
    "8gaussians": lambda n, g: _gaussians("8gaussians", n, g),
    "25gaussians": lambda n, g: _gaussians("25gaussians", n, g),
    "moons": _moons,
    "checkerboard": _checkerboard,
    "rings": _rings,
    "spirals": _spirals,
}


def sample_toy2d(name: str, n: int, generator: torch.Generator | None = None, seed: int | None = None) -> Tensor:
    """Draw ``n`` points ``(n, 2)`` float32 from the distribution ``name`` (see the module doc).

    Pass a ``generator`` or a ``seed`` for reproducible samples.
    """
    check_choice("name", name, TOY2D)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a positive integer")
    if generator is None:
        generator = torch.Generator().manual_seed(seed) if seed is not None else torch.Generator().manual_seed(torch.seed() % 2**63)
    return TOY2D[name](n, generator).float()


class Toy2D(torch.utils.data.Dataset):
    """A fixed sample of ``length`` points as a dataset of ``(point (2,), 0)`` items."""

    num_classes = 0

    def __init__(self, name: str = "8gaussians", length: int = 100_000, seed: int = 0):
        self.name = name
        self.points = sample_toy2d(name, length, seed=seed)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.points[i], 0
