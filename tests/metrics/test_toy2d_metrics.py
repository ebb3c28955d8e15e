"""2-D metrics: a perfect sampler covers every mode, a collapsed one covers one; SWD and MMD."""

import pytest
import torch

from genlab.data import mixture, sample_toy2d
from genlab.metrics import mmd_rbf, mode_coverage, sliced_wasserstein, toy2d_scores


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_exact_samples_cover_every_mode(name):
    s = mode_coverage(sample_toy2d(name, 2500, seed=1), name)
    assert s["modes_covered"] == s["num_modes"] and s["high_quality"] > 0.97 and s["kl_uniform"] < 0.05


def test_collapsed_sampler_covers_one_mode():
    m = mixture("25gaussians")
    collapsed = m.modes[7] + m.std * torch.randn(2500, 2)
    s = mode_coverage(collapsed, "25gaussians")
    assert s["modes_covered"] == 1 and s["high_quality"] > 0.97
    blurry = mode_coverage(torch.randn(2500, 2) * 3, "25gaussians")
    assert blurry["high_quality"] < 0.2


def test_sliced_wasserstein_and_mmd():
    x = torch.randn(1000, 2)
    assert sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)
    assert sliced_wasserstein(x, x + torch.tensor([3.0, 0.0])) == pytest.approx(3.0 / 2**0.5, rel=0.1)
    # unequal sizes use matched quantiles
    assert sliced_wasserstein(x, torch.randn(700, 2)) < 0.15
    assert mmd_rbf(x, torch.randn(1000, 2)) < 0.01 < mmd_rbf(x, torch.randn(1000, 2) + 2)


def test_toy2d_scores_report_the_noise_floor():
    s = toy2d_scores(sample_toy2d("8gaussians", 2000, seed=3), "8gaussians")
    assert s["swd"] < 2 * s["swd_noise_floor"] + 0.05 and s["modes_covered"] == 8
    bad = toy2d_scores(torch.randn(2000, 2), "8gaussians")
    assert bad["swd"] > 2 * bad["swd_noise_floor"]


def test_bad_points():
    with pytest.raises(ValueError, match="\\(N, D\\)"):
        sliced_wasserstein(torch.randn(10), torch.randn(10, 2))
    with pytest.raises(ValueError, match="NaN or Inf"):
        mmd_rbf(torch.full((5, 2), float("nan")), torch.randn(5, 2))
    with pytest.raises(ValueError, match="same dimension"):
        sliced_wasserstein(torch.randn(10, 3), torch.randn(10, 2))
