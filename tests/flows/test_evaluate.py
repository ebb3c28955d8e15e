"""Evaluation helpers: solver specs, seeded noise, sampling in batches, scores, grids and plots."""

import pytest
import torch

from genlab.data import sample_toy2d
from genlab.flows.evaluate import (
    class_grid, integrate, noise_and_labels, parse_solver, plot_quality_vs_nfe, score_samples, solver_nfe,
)
from genlab.train import save_scatter
from tests.flows.gaussian1d import v_star


def test_solver_specs():
    assert parse_solver("heun:10") == ("heun", 10) and parse_solver("dopri5") == ("dopri5", None)
    assert solver_nfe("rk4:3") == 12 and solver_nfe("euler:4", guidance=True) == 8 and solver_nfe("dopri5") is None
    for bad, message in [("euler", "must be 'method:steps'"), ("euler:0", "steps >= 1"), ("euler:x", "steps >= 1"),
                         ("dopri5:4", "adaptive"), ("leapfrog:2", "not supported")]:
        with pytest.raises(ValueError, match=message):
            parse_solver(bad)


def test_noise_is_seeded_and_labels_balanced():
    a, la = noise_and_labels(25, (1, 4, 4), 10, seed=3)
    b, _ = noise_and_labels(25, (1, 4, 4), 10, seed=3)
    assert torch.equal(a, b) and a.shape == (25, 1, 4, 4) and la.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert noise_and_labels(4, (2,), 0, seed=0)[1] is None


def test_integrate_in_batches_matches_one_batch():
    x0 = torch.randn(10, 1)
    one, nfe = integrate(v_star, x0, None, "rk4:3")
    batched, nfe_b = integrate(v_star, x0, None, "rk4:3", batch_size=3)
    assert torch.allclose(one, batched) and nfe == nfe_b == 12


def test_scores_read_mean_collapse_as_far_from_data():
    collapsed = score_samples("toy2d", torch.zeros(500, 2) + 0.01 * torch.randn(500, 2), None, "8gaussians")
    real = score_samples("toy2d", sample_toy2d("8gaussians", 500, seed=1), None, "8gaussians")
    assert collapsed["swd"] > 5 * real["swd_noise_floor"] and real["swd"] < 2 * real["swd_noise_floor"]
    assert score_samples("toy2d", torch.full((4, 2), float("nan")), None) == {"finite": 0.0}
    assert score_samples("photos", torch.zeros(4, 3, 8, 8), None) == {}


def test_class_grid_rows_and_plots(tmp_path):
    labels = torch.arange(30) % 3
    samples = labels.float().view(-1, 1, 1, 1).expand(30, 1, 2, 2)
    grid = class_grid(samples, labels, 3, 4)
    assert grid[:, 0, 0, 0].tolist() == [0.0] * 4 + [1.0] * 4 + [2.0] * 4
    with pytest.raises(ValueError, match="need 11 samples of class 0"):
        class_grid(samples, labels, 3, 11)
    assert save_scatter(torch.randn(50, 2), tmp_path / "s.png", "title").stat().st_size > 1000
    path = plot_quality_vs_nfe({"euler": [(1, 1.0), (4, 0.3)], "heun": [(2, 0.5), (8, 0.1)]}, tmp_path / "q.png", "swd", 0.05)
    assert path.stat().st_size > 1000
