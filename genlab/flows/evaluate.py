"""Sampling a trained flow for evaluation: solver specs, seeded noise, scores, grids and plots.

Shared by ``scripts/train_flow.py`` and ``scripts/sample_flow.py``. A *solver spec* is
``"method:steps"`` (``"euler:1"``, ``"heun:10"``) or ``"dopri5"`` (adaptive; tolerances apart).
Scores: toy2d samples get the sliced Wasserstein distance with its noise floor, MMD and mode
coverage (:func:`genlab.metrics.toy2d_scores`); digits get FD-digits-cnn with its noise floor,
precision/recall and, for class-conditional samples, the shipped classifier's accuracy
(:func:`genlab.metrics.digits_scores`).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, ContextManager

import torch
from torch import Tensor

from genlab.flows.samplers import ADAPTIVE_METHODS, FIXED_METHODS, METHODS, sample
from genlab.utils import check_choice


def parse_solver(spec: str) -> tuple[str, int | None]:
    """``"heun:10" -> ("heun", 10)``; ``"dopri5" -> ("dopri5", None)``."""
    method, _, steps = str(spec).partition(":")
    check_choice("solver method", method, METHODS)
    if method in ADAPTIVE_METHODS:
        if steps:
            raise ValueError(f"solver {spec!r}: {method} is adaptive; write it without ':steps'")
        return method, None
    if not steps.isdigit() or int(steps) < 1:
        raise ValueError(f"solver {spec!r} must be 'method:steps' with steps >= 1, e.g. 'euler:10', or 'dopri5'")
    return method, int(steps)


def solver_nfe(spec: str, guidance: bool = False) -> int | None:
    """The NFE a fixed-step solver spec will make (None for adaptive ones)."""
    method, steps = parse_solver(spec)
    if steps is None:
        return None
    return FIXED_METHODS[method] * steps * (2 if guidance else 1)


def noise_and_labels(n: int, data_shape: tuple[int, ...], num_classes: int, seed: int) -> tuple[Tensor, Tensor | None]:
    """Seeded source noise ``(n, *data_shape)`` on the CPU and balanced labels ``i mod num_classes``."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, *data_shape, generator=g)
    labels = torch.arange(n) % num_classes if num_classes else None
    return x0, labels


@torch.no_grad()
def integrate(model: Callable[..., Tensor], x0: Tensor, labels: Tensor | None, solver: str, *, guidance_scale: float = 1.0,
              null_label: int | None = None, batch_size: int = 500, device: torch.device | str = "cpu",
              autocast: Callable[[], ContextManager] = nullcontext, rtol: float = 1e-5, atol: float = 1e-5) -> tuple[Tensor, int]:
    """Samples ``(n, ...)`` (float32, CPU) from ``x0`` with a solver spec, and the measured NFE per sample."""
    method, steps = parse_solver(solver)
    out, nfe = [], 0

    def velocity(*args):
        with autocast():
            return model(*args)

    for i in range(0, len(x0), batch_size):
        xb = x0[i:i + batch_size].to(device)
        yb = labels[i:i + batch_size].to(device) if labels is not None else None
        res = sample(velocity, xb, steps, method, labels=yb, guidance_scale=guidance_scale, null_label=null_label,
                     rtol=rtol, atol=atol)
        out.append(res.samples.float().cpu())
        nfe = max(nfe, res.nfe)
    return torch.cat(out), nfe


def score_samples(dataset: str, samples: Tensor, labels: Tensor | None, toy2d: str = "8gaussians", seed: int = 0) -> dict:
    """Scores of samples from ``dataset`` (``toy2d`` or ``digits``; others get none), as a flat dict."""
    from genlab.metrics import digits_scores, toy2d_scores

    if not torch.isfinite(samples).all():
        return {"finite": 0.0}
    if dataset == "toy2d":
        return toy2d_scores(samples, toy2d, seed=seed)
    if dataset == "digits":
        score = digits_scores(samples.clamp(-1, 1), labels, seed=seed)
        scores = {"fd_digits_cnn": score.value, **{k: v for k, v in score.extra.items() if isinstance(v, float)}}
        return scores
    return {}


def class_grid(samples: Tensor, labels: Tensor, num_classes: int, per_class: int) -> Tensor:
    """Reorder samples into rows of one class each: ``(num_classes * per_class, C, H, W)``."""
    rows = []
    for c in range(num_classes):
        picked = samples[labels == c][:per_class]
        if len(picked) < per_class:
            raise ValueError(f"need {per_class} samples of class {c} for the grid; got {len(picked)}")
        rows.append(picked)
    return torch.cat(rows)


def plot_quality_vs_nfe(curves: dict[str, list[tuple[int, float]]], path: str | Path, metric: str,
                        floor: float | None = None) -> Path:
    """Quality (lower is better) against measured NFE, one line per solver (log-log), matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genlab.images import save_figure

    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    for method, points in curves.items():
        points = sorted(p for p in points if math.isfinite(p[1]))
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=method, ms=3)
    if floor is not None:
        ax.axhline(floor, color="0.5", ls="--", lw=1, label="noise floor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model evaluations per sample (NFE)")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["class_grid", "integrate", "noise_and_labels", "parse_solver", "plot_quality_vs_nfe", "score_samples",
           "solver_nfe"]
