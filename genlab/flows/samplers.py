"""ODE samplers for velocity fields: Euler, midpoint, Heun, RK4 and adaptive dopri5 (torchdiffeq).

    out = sample(model, torch.randn(64, 2), steps=10, method="heun")   # out.samples, out.nfe == 20
    out = sample(model, noise, steps=8, labels=y, guidance_scale=2.0, null_label=10)
    back = sample(model, data, time_grid=torch.linspace(1, 0, 101))    # data -> noise (t = 1 -> 0)

Time convention: ``t = 0`` is the source (noise), ``t = 1`` is data; the solvers integrate
``dx/dt = v(x, t)`` along a time grid ``t_0, ..., t_N`` (``N`` steps, ``h_i = t_{i+1} - t_i``). A
descending grid integrates backwards. Fixed-step updates (Butcher tableaux, Hairer et al.
"Solving ODEs I", II.1):

==========  =================================================================  ===========
method      step                                                               NFE / step
==========  =================================================================  ===========
euler       ``x + h v(x, t)``                                                   1
midpoint    ``x + h v(x + h/2 v(x, t), t + h/2)``                               2
heun        ``d = v(x, t)``, ``x + h/2 (d + v(x + h d, t + h))``                2
rk4         classic 4th order, stages at ``t, t + h/2, t + h/2, t + h``         4
dopri5      adaptive Dormand-Prince 5(4) through ``torchdiffeq.odeint``          measured
==========  =================================================================  ===========

NFE (network evaluations per sample) is *counted* by a wrapper around the model, never inferred
from the configuration; classifier-free guidance counts the conditional and unconditional
evaluations (twice the calls). The solver state and time stay in the dtype of ``x0`` (float32 or
float64): reduced precision belongs inside the model (autocast), never in the solver state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from genlab.flows.guidance import check_guidance, guided_velocity
from genlab.utils import check_choice, check_finite

FIXED_METHODS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
ADAPTIVE_METHODS = ["dopri5"]
METHODS = [*FIXED_METHODS, *ADAPTIVE_METHODS]


@dataclass
class FlowSamples:
    """What :func:`sample` returns.

    Attributes:
        samples: the state at the grid's last time ``(B, ...)``.
        nfe: measured model evaluations per sample (CFG counts both halves).
        times: the time grid ``(N + 1,)``.
        trajectory: states on the grid ``(N + 1, B, ...)`` when requested, else None.
    """

    samples: Tensor
    nfe: int
    times: Tensor
    trajectory: Tensor | None = None


class VelocityField:
    """``v(x, t)`` of a model (genlab time: 0 = source, 1 = data) with the model calls counted,
    guidance applied and shapes checked.

    Calls the model as ``model(x, t)`` (``t (B,)``), or ``model(x, t, labels)`` when labels are
    given; with ``guidance_scale != 1``, one forward on the doubled batch (two evaluations).
    A velocity holding NaN or Inf raises ``FloatingPointError`` naming the time, the solver step
    (``step`` of ``steps``, set by the caller) and the evaluation (one reduction per call).
    """

    def __init__(self, model: Callable[..., Tensor], labels: Tensor | None = None, guidance_scale: float = 1.0,
                 null_label: int | None = None):
        self.model, self.labels, self.scale, self.null = model, labels, guidance_scale, null_label
        self.guided = check_guidance(guidance_scale, labels, null_label)
        self.nfe = 0
        self.step: int | None = None  # the solver step in progress (fixed-step methods)
        self.steps: int | None = None

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        tb = t.to(x.dtype).expand(x.shape[0])
        if self.guided:
            v = guided_velocity(self.model, x, tb, self.labels, self.null, self.scale)
            self.nfe += 2
        else:
            v = self.model(x, tb) if self.labels is None else self.model(x, tb, self.labels)
            self.nfe += 1
        if not isinstance(v, Tensor) or v.shape != x.shape:
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(f"model returned {got} for input of shape {tuple(x.shape)}; a velocity model must "
                             "return a tensor of its input's shape")
        if not torch.isfinite(v.detach().float().sum()):  # one reduction; counted only when it overflows
            bad = int((~torch.isfinite(v)).sum())
            if bad:
                where = (f"step {self.step + 1} of {self.steps}" if self.step is not None else "an adaptive step")
                raise FloatingPointError(f"the model returned NaN or Inf velocities ({bad} of {v.numel()} values) at "
                                         f"t={float(t):.6g}, {where}, model evaluation {self.nfe}")
        return v.to(x.dtype)


def uniform_grid(steps: int, t_start: float = 0.0, t_end: float = 1.0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> Tensor:
    """``steps + 1`` equally spaced times from ``t_start`` to ``t_end`` (exact endpoints)."""
    _check_steps(steps)
    return torch.linspace(t_start, t_end, steps + 1, dtype=dtype, device=device)


def _check_steps(steps) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be an integer >= 1")


def _check_grid(grid: Tensor) -> None:
    if not isinstance(grid, Tensor):
        raise TypeError(f"time_grid must be a 1-D tensor of times in [0, 1]; got {type(grid).__name__}")
    if grid.ndim != 1 or len(grid) < 2:
        raise ValueError(f"time_grid must be 1-D with at least 2 times; got shape {tuple(grid.shape)}")
    if not torch.isfinite(grid).all() or grid.min() < 0 or grid.max() > 1:
        raise ValueError(f"time_grid must hold finite times in [0, 1] (0 = source, 1 = data); got {grid.tolist()}")
    d = grid.diff()
    if not ((d > 0).all() or (d < 0).all()):
        raise ValueError(f"time_grid must be strictly increasing (source to data) or strictly decreasing; got {grid.tolist()}")


def _fixed_step(method: str, v: VelocityField, x: Tensor, t: Tensor, h: Tensor) -> Tensor:
    if method == "euler":
        return x + h * v(t, x)
    if method == "midpoint":
        return x + h * v(t + h / 2, x + h / 2 * v(t, x))
    if method == "heun":
        d = v(t, x)
        return x + h / 2 * (d + v(t + h, x + h * d))
    k1 = v(t, x)
    k2 = v(t + h / 2, x + h / 2 * k1)
    k3 = v(t + h / 2, x + h / 2 * k2)
    k4 = v(t + h, x + h * k3)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def sample(model: Callable[..., Tensor], x0: Tensor, steps: int | None = None, method: str = "euler", *,
           time_grid: Tensor | None = None, labels: Tensor | None = None, guidance_scale: float = 1.0,
           null_label: int | None = None, return_trajectory: bool = False, rtol: float = 1e-5, atol: float = 1e-5,
           max_num_steps: int = 10_000, min_step: float = 0.0, enable_grad: bool = False) -> FlowSamples:
    """Integrate ``dx/dt = v(x, t)`` from ``x0`` along a time grid (0 = source, 1 = data).

    Args:
        model: velocity model ``model(x (B, ...), t (B,)[, labels (B,)]) -> (B, ...)``.
        x0: starting states ``(B, ...)`` in float32 or float64 (noise for sampling; data with a
            descending grid to invert).
        steps: ``N`` uniform steps from 0 to 1. For dopri5 it sets the output grid (the
            trajectory's times), not the solver's steps.
        method: ``euler``, ``midpoint``, ``heun``, ``rk4`` or ``dopri5``.
        time_grid: explicit grid ``(N + 1,)`` in ``[0, 1]``, strictly monotone, instead of ``steps``
            (e.g. a shifted grid or diffusers' schedule; descending integrates backwards).
        labels: class labels ``(B,)`` for a class-conditional model.
        guidance_scale: classifier-free guidance ``s`` (``1`` = none); needs ``labels`` and
            ``null_label``.
        return_trajectory: also return the states at every grid time.
        rtol, atol, max_num_steps, min_step: dopri5 tolerances and limits (record them with results).
        enable_grad: keep the autograd graph (off by default: sampling is inference).

    Returns:
        :class:`FlowSamples` with the samples, the measured NFE, the grid and the trajectory.

    Raises:
        ValueError: ``x0`` holds NaN or Inf.
        FloatingPointError: the model returned NaN or Inf (naming the time, step and evaluation).
    """
    check_choice("method", method, METHODS)
    if not isinstance(x0, Tensor):
        raise TypeError(f"x0 must be a tensor (B, ...); got {type(x0).__name__}")
    if x0.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x0 must be float32 or float64 (the solver state; run the model under autocast for "
                        f"reduced precision); got {x0.dtype}")
    if x0.ndim < 1 or x0.shape[0] < 1:
        raise ValueError(f"x0 must be a batch (B, ...) with B >= 1; got shape {tuple(x0.shape)}")
    check_finite("x0", x0)
    if labels is not None and (not isinstance(labels, Tensor) or labels.shape != (x0.shape[0],)):
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor of shape (B,) = ({x0.shape[0]},); got {got}")
    if time_grid is not None:
        if steps is not None:
            raise ValueError(f"pass either steps={steps!r} or time_grid, not both")
        _check_grid(time_grid)
        grid = time_grid.to(device=x0.device, dtype=x0.dtype)
    elif steps is not None:
        grid = uniform_grid(steps, dtype=x0.dtype, device=x0.device)
    elif method in ADAPTIVE_METHODS:
        grid = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
    else:
        raise ValueError(f"method={method!r} needs steps (an integer >= 1) or a time_grid")
    v = VelocityField(model, labels, guidance_scale, null_label)
    with torch.set_grad_enabled(enable_grad):
        if method in FIXED_METHODS:
            x, states = x0, [x0]
            v.steps = len(grid) - 1
            for i in range(len(grid) - 1):
                v.step = i
                x = _fixed_step(method, v, x, grid[i], grid[i + 1] - grid[i])
                if return_trajectory:
                    states.append(x)
            trajectory = torch.stack(states) if return_trajectory else None
        else:
            trajectory = _odeint(v, x0, grid, method, rtol, atol, max_num_steps, min_step)
            x = trajectory[-1]
            trajectory = trajectory if return_trajectory else None
    return FlowSamples(samples=x, nfe=v.nfe, times=grid, trajectory=trajectory)


def _odeint(v: VelocityField, x0: Tensor, grid: Tensor, method: str, rtol: float, atol: float, max_num_steps: int,
            min_step: float) -> Tensor:
    from torchdiffeq import odeint

    for name, value in (("rtol", rtol), ("atol", atol)):
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be > 0")
    _check_steps(max_num_steps)
    options = {"max_num_steps": max_num_steps, "min_step": min_step, "dtype": x0.dtype}
    try:
        return odeint(v, x0, grid, rtol=rtol, atol=atol, method=method, options=options)
    except AssertionError as e:  # torchdiffeq signals exhausted step budgets and underflow with asserts
        raise RuntimeError(f"{method} failed after {v.nfe} model evaluations ({e}); raise max_num_steps={max_num_steps}, "
                           f"set min_step, or loosen rtol={rtol}/atol={atol}") from None


__all__ = ["ADAPTIVE_METHODS", "FIXED_METHODS", "FlowSamples", "METHODS", "VelocityField", "sample", "uniform_grid"]
