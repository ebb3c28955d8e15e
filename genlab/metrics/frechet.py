"""Frechet distance between feature sets, k-NN precision/recall, and the real-vs-real noise floor.

The Frechet (2-Wasserstein) distance between gaussians ``N(mu1, S1)`` and ``N(mu2, S2)`` is
``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)`` (Dowson & Landau 1982;
FID: Heusel et al. 2017, Eq. 6). The trace term is computed from the eigenvalues of the
symmetric matrix ``S1^1/2 S2 S1^1/2`` in float64, which stays real and stable when the
covariances are singular (fewer samples than feature dimensions), where ``scipy.linalg.sqrtm``
of the non-symmetric product can return complex noise.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``features (N, D)``, in float64."""
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D); got shape {tuple(features.shape)}")
    if len(features) < 2:
        raise ValueError(f"need at least 2 samples for a covariance; got {len(features)}")
    f = features.detach().double()
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def _sqrt_psd(m: Tensor) -> Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (float64)."""
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"mismatched statistics: means {tuple(mu1.shape)} vs {tuple(mu2.shape)}, "
                         f"covariances {tuple(sigma1.shape)} vs {tuple(sigma2.shape)}")
    root1 = _sqrt_psd(sigma1)
    inner = torch.linalg.eigvalsh(root1 @ sigma2 @ root1).clamp_min(0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * inner
    return max(value.item(), 0.0)


def frechet_distance_features(a: Tensor, b: Tensor) -> float:
    """Frechet distance between the gaussians fitted to feature sets ``a (N, D)`` and ``b (M, D)``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) and (M, D) with the same D; got {tuple(a.shape)} and {tuple(b.shape)}")
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def _kth_neighbour_radius(x: Tensor, k: int) -> Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the point itself is its own nearest neighbour


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, Sec. 3).

    Precision: fraction of ``fake`` samples inside the real manifold (the union of balls around
    each real feature with radius its ``k``-th nearest real neighbour); recall: fraction of
    ``real`` samples inside the fake manifold.
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be (N, D) and (M, D); got {tuple(real.shape)} and {tuple(fake.shape)}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set; got {len(real)} and {len(fake)}")
    real, fake = real.double(), fake.double()
    r_real, r_fake = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    d = torch.cdist(fake, real)  # (M, N)
    precision = (d <= r_real[None, :]).any(1).double().mean().item()
    recall = (d.T <= r_fake[None, :]).any(1).double().mean().item()
    return {"precision": precision, "recall": recall}


def noise_floor(real: Tensor, n: int, repeats: int = 5, seed: int = 0) -> float:
    """Mean Frechet distance between two disjoint random subsets of ``n`` real features each.

    The distance a perfect generator would score with ``n`` samples: FD is biased upwards at
    small ``n``, so every score is reported next to this floor.
    """
    if 2 * n > len(real):
        raise ValueError(f"noise floor with n={n} needs 2n={2 * n} real samples; only {len(real)} available")
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(repeats):
        perm = torch.randperm(len(real), generator=g)
        values.append(frechet_distance_features(real[perm[:n]], real[perm[n:2 * n]]))
    return sum(values) / len(values)
