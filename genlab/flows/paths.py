"""The straight-line path of rectified flow / flow matching under genlab's time convention.

Time convention (fixed for all of genlab): ``t = 0`` is the source (noise, or a generator's
output), ``t = 1`` is data. The path is ``x_t = (1 - t) x_0 + t x_1`` and its velocity target is
``u = x_1 - x_0`` (Liu, Gong, Liu 2022, "Flow Straight and Fast", arXiv 2209.03003, Eq. 1;
Lipman et al. 2023, conditional OT path). Sampling integrates ``dx/dt = v(x, t)`` from 0 to 1.

Shapes: ``x_0, x_1 (B, ...)``; times are per example, ``t (B,)``, reshaped explicitly to
``(B, 1, ..., 1)`` (a bare ``(B,)`` broadcast against ``(B, C, H, W)`` would be silently wrong).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from genlab.utils import check_choice

TIME_DISTRIBUTIONS = ["uniform", "logit_normal", "discrete"]


def expand_time(t: Tensor, x: Tensor) -> Tensor:
    """Reshape per-example times ``t (B,)`` to ``(B, 1, ..., 1)`` to broadcast against ``x (B, ...)``.

    Raises ``ValueError`` for any other shape of ``t``.
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"t must be a tensor of shape (B,) = ({x.shape[0]},); got {type(t).__name__}")
    if t.shape != (x.shape[0],):
        raise ValueError(f"t must have shape (B,) = ({x.shape[0]},) for x of shape {tuple(x.shape)}; got {tuple(t.shape)}")
    return t.reshape(-1, *([1] * (x.ndim - 1)))


def interpolate(x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """``x_t = (1 - t) x_0 + t x_1`` with ``t (B,)`` (0 = source, 1 = data); ``(B, ...)``."""
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape; got {tuple(x0.shape)} and {tuple(x1.shape)}")
    tt = expand_time(t, x0).to(x0.dtype)
    return (1 - tt) * x0 + tt * x1  # exact at both ends: x0 at t = 0, x1 at t = 1


def velocity_target(x0: Tensor, x1: Tensor) -> Tensor:
    """The path's time derivative ``u = x_1 - x_0`` (source to data); ``(B, ...)``."""
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape; got {tuple(x0.shape)} and {tuple(x1.shape)}")
    return x1 - x0


def sample_times(n: int, distribution: str = "uniform", *, mean: float = 0.0, std: float = 1.0, steps: int = 1,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
    """Per-example training times ``(n,)`` in float32, 0 = source, 1 = data.

    Args:
        distribution: ``"uniform"`` (``U[0, 1)``, rectified flow), ``"logit_normal"``
            (``sigmoid(mean + std * N(0, 1))``, Esser et al. 2024 "Scaling Rectified Flow
            Transformers", Eq. 19) or ``"discrete"`` (uniform over ``{0, 1/k, ..., (k-1)/k}``
            with ``k = steps``: the times a ``k``-step Euler sampler visits, for k-step distillation,
            Liu et al. 2022 Sec. 2.3).
        mean, std: location and scale of the logit-normal.
        steps: ``k`` of the discrete distribution.
        generator: random numbers (drawn on the generator's device, then moved to ``device``).
    """
    check_choice("distribution", distribution, TIME_DISTRIBUTIONS)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a positive integer")
    gen_device = generator.device if generator is not None else device
    if distribution == "uniform":
        t = torch.rand(n, generator=generator, device=gen_device)
    elif distribution == "logit_normal":
        if not std > 0:
            raise ValueError(f"std={std!r} of the logit-normal time distribution must be > 0")
        t = torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=gen_device))
    else:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps={steps!r} of the discrete time distribution must be an integer >= 1")
        t = torch.randint(steps, (n,), generator=generator, device=gen_device).float() / steps
    return t.to(device) if device is not None else t


def flow_matching_loss(model: Callable[..., Tensor], x0: Tensor, x1: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
    """Rectified-flow / flow-matching regression ``E ||v(x_t, t) - (x_1 - x_0)||^2`` (Liu et al. 2022, Eq. 1).

    Args:
        model: velocity model called as ``model(x_t, t)`` or ``model(x_t, t, labels)``.
        x0: source samples ``(B, ...)`` (noise, or the first half of reflow pairs).
        x1: data ``(B, ...)`` (or the second half of reflow pairs).
        t: per-example times ``(B,)`` from :func:`sample_times`.
        labels: class labels ``(B,)`` for a class-conditional model.

    Returns the mean squared error over every element (a scalar). The path and target are formed
    in float32 even under autocast; only the model call runs in reduced precision.
    """
    with torch.autocast(device_type=x1.device.type, enabled=False):
        x0, x1, t = x0.float(), x1.float(), t.float()
        xt = interpolate(x0, x1, t)
        target = velocity_target(x0, x1)
    v = model(xt, t) if labels is None else model(xt, t, labels)
    if v.shape != target.shape:
        raise ValueError(f"model returned shape {tuple(v.shape)} for input of shape {tuple(xt.shape)}; "
                         "a velocity model must return the shape of its input")
    return (v.float() - target).square().mean()


def flip_time(t: Tensor | float) -> Tensor | float:
    """``1 - t``: between genlab's time (0 = source) and conventions where 0 is data; an involution."""
    return 1 - t


def shift_time(t: Tensor, shift: float) -> Tensor:
    """Resolution shift of a time grid, ``t' = t / (t + s (1 - t))`` (genlab time).

    The same map as the static shift ``sigma' = s sigma / (1 + (s - 1) sigma)`` of diffusers'
    ``FlowMatchEulerDiscreteScheduler`` with ``sigma = 1 - t`` (Esser et al. 2024, Sec. 5.3.2):
    ``s > 1`` spends more steps near the noise end.
    """
    if not shift > 0:
        raise ValueError(f"shift={shift!r} must be > 0")
    return t / (t + shift * (1 - t))


__all__ = ["TIME_DISTRIBUTIONS", "expand_time", "flip_time", "flow_matching_loss", "interpolate", "sample_times",
           "shift_time", "velocity_target"]
