"""Metrics for 2-D samples: sliced Wasserstein distance, MMD, and mode coverage.

Mode coverage follows the GAN toy protocol (Unrolled GAN, VEEGAN, PacGAN): a sample is *high
quality* if it lies within 3 standard deviations of its nearest mode centre, and a mode is
*covered* if it is the nearest centre of at least one high-quality sample.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genlab.data.toy2d import mixture, sample_toy2d


def _check_points(name: str, x: Tensor) -> Tensor:
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D) points; got shape {tuple(x.shape)}")
    if len(x) < 2:
        raise ValueError(f"{name} needs at least 2 points; got {len(x)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return x.detach().double().cpu()


def sliced_wasserstein(x: Tensor, y: Tensor, projections: int = 512, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance: ``sqrt(mean over random directions of W2^2)`` of the 1-D
    projections, with W2 between 1-D samples from matched quantiles (exact for equal sizes)."""
    x, y = _check_points("x", x), _check_points("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension; got {x.shape[1]} and {y.shape[1]}")
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], projections, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = (x @ theta).sort(0).values, (y @ theta).sort(0).values
    if len(px) != len(py):
        q = torch.linspace(0, 1, max(len(px), len(py)), dtype=torch.float64)
        px, py = torch.quantile(px, q, dim=0), torch.quantile(py, q, dim=0)
    return (px - py).square().mean().sqrt().item()


def mmd_rbf(x: Tensor, y: Tensor, bandwidths: tuple[float, ...] | None = None) -> float:
    """Unbiased squared MMD with a sum of RBF kernels ``exp(-|a - b|^2 / (2 h^2))``.

    Default bandwidths: the median pairwise distance of the pooled sample times
    ``{0.25, 0.5, 1, 2, 4}`` (the median heuristic, widened so one scale cannot miss the structure).
    """
    x, y = _check_points("x", x), _check_points("y", y)
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z).square()
    if bandwidths is None:
        median = d2[torch.triu_indices(len(z), len(z), 1).unbind()].sqrt().median()
        bandwidths = tuple((median * s).item() for s in (0.25, 0.5, 1.0, 2.0, 4.0))
    k = sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    value = (kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (m * (m - 1)) - 2 * kxy.mean()
    return value.item()


def mode_coverage(samples: Tensor, name: str = "25gaussians", threshold: float = 3.0) -> dict[str, float]:
    """Modes covered and fraction of high-quality samples for ``8gaussians`` / ``25gaussians``.

    Returns ``{"modes_covered", "num_modes", "high_quality", "kl_uniform"}``, the last being the
    KL divergence of the nearest-mode histogram of high-quality samples from uniform.
    """
    x = _check_points("samples", samples).float()
    m = mixture(name)
    dist, nearest = torch.cdist(x, m.modes).min(1)
    good = dist <= threshold * m.std
    counts = torch.bincount(nearest[good], minlength=len(m.modes)).double()
    p = counts / counts.sum().clamp_min(1)
    kl = (p * (p.clamp_min(1e-12) * len(m.modes)).log()).sum().item() if counts.sum() > 0 else float("inf")
    return {"modes_covered": int((counts > 0).sum()), "num_modes": len(m.modes),
            "high_quality": good.double().mean().item(), "kl_uniform": kl}


def toy2d_scores(samples: Tensor, name: str, seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein and MMD against a fresh reference sample of the same size, the sliced
    Wasserstein noise floor (two independent reference samples), and mode coverage for mixtures."""
    n = len(samples)
    ref = sample_toy2d(name, n, seed=10_000 + seed)
    ref2 = sample_toy2d(name, n, seed=20_000 + seed)
    scores = {"swd": sliced_wasserstein(samples, ref), "swd_noise_floor": sliced_wasserstein(ref2, ref),
              "mmd": mmd_rbf(samples, ref), "samples": n}
    if name in ("8gaussians", "25gaussians"):
        scores.update(mode_coverage(samples, name))
    return scores
