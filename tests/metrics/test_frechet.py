"""Frechet distance: closed form for gaussians, scipy's sqrtm, identical inputs, precision/recall."""

import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.metrics import frechet_distance, frechet_distance_features, gaussian_stats, noise_floor, precision_recall


def _scipy_fd(a: np.ndarray, b: np.ndarray) -> float:
    """The pytorch-fid / torchmetrics reference formula with scipy.linalg.sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_closed_form_for_two_gaussians():
    # diagonal covariances: FD = |mu1-mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, -1.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = (mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected.item(), rel=1e-12)
    # rotated covariance (non-diagonal): FD is rotation invariant
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    fd_rot = frechet_distance(q @ mu1.double(), q @ torch.diag(a).double() @ q.T, q @ mu2.double(), q @ torch.diag(b).double() @ q.T)
    assert fd_rot == pytest.approx(expected.item(), rel=1e-9)


@pytest.mark.parametrize("dim, n", [(8, 500), (64, 200)])
def test_matches_scipy_sqrtm_on_random_features(dim, n):
    g = torch.Generator().manual_seed(dim)
    a = torch.randn(n, dim, generator=g, dtype=torch.float64)
    b = torch.randn(n, dim, generator=g, dtype=torch.float64) @ torch.randn(dim, dim, generator=g, dtype=torch.float64) * 0.3 + 0.5
    assert frechet_distance_features(a, b) == pytest.approx(_scipy_fd(a.numpy(), b.numpy()), rel=1e-6)


def test_identical_inputs_give_zero_and_singular_covariances_are_fine():
    a = torch.randn(300, 16)
    assert frechet_distance_features(a, a) == pytest.approx(0.0, abs=1e-6)
    few = torch.randn(10, 64)  # rank-deficient covariance (10 samples, 64 dims)
    assert frechet_distance_features(few, few) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance_features(few, few + 1) == pytest.approx(64.0, rel=1e-6)


def test_precision_recall_and_noise_floor():
    real = torch.randn(400, 2)
    pr = precision_recall(real, torch.randn(400, 2) * 0.3)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.6  # concentrated fakes: precise, low recall
    far = precision_recall(real, torch.randn(400, 2) + 20)
    assert far["precision"] == 0 and far["recall"] == 0
    floor = noise_floor(torch.randn(2000, 4), 500)
    assert 0 < floor < 0.1


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 samples"):
        gaussian_stats(torch.randn(1, 3))
    with pytest.raises(ValueError, match="same D"):
        frechet_distance_features(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="2n=20"):
        noise_floor(torch.randn(15, 2), 10)
    with pytest.raises(ValueError, match="more than 3 samples"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2))
