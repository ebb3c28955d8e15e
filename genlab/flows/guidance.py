"""Classifier-free guidance for class-conditional velocity fields (Ho & Salimans 2022, Eq. 6).

genlab's convention: ``v = v_uncond + s (v_cond - v_uncond)`` with ``s = guidance_scale``;
``s = 1`` is no guidance. Meta's flow_matching and MaskGIT write ``(1 + w) v_cond - w v_uncond``,
so ``s = 1 + w`` (:func:`guidance_scale_from_w`). The conditional and unconditional halves run
as one batched forward (DiT's ``forward_with_cfg``); they count as two model evaluations.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor


def guidance_scale_from_w(w: float) -> float:
    """``s = 1 + w``: the genlab scale of a peer's ``(1 + w) v_cond - w v_uncond`` setting."""
    return 1.0 + w


def w_from_guidance_scale(s: float) -> float:
    """``w = s - 1``: the inverse of :func:`guidance_scale_from_w`."""
    return s - 1.0


def check_guidance(guidance_scale: float, labels: Tensor | None, null_label: int | None) -> bool:
    """Validate guidance arguments; return whether guidance is active (``s != 1``)."""
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) or not math.isfinite(guidance_scale):
        raise ValueError(f"guidance_scale={guidance_scale!r} must be a finite number (1 = no guidance)")
    if guidance_scale == 1:
        return False
    if labels is None:
        raise ValueError(f"guidance_scale={guidance_scale} needs labels (B,) of the classes to guide towards")
    if isinstance(null_label, bool) or not isinstance(null_label, int):
        raise ValueError(f"guidance_scale={guidance_scale} needs null_label, the integer index of the unconditional "
                         f"class; got {null_label!r}")
    return True


def guided_velocity(model: Callable[..., Tensor], x: Tensor, t: Tensor, labels: Tensor, null_label: int,
                    guidance_scale: float) -> Tensor:
    """``v_uncond + s (v_cond - v_uncond)`` from one forward on the doubled batch.

    Shapes: ``x (B, ...)``, genlab times ``t (B,)`` (0 = source, 1 = data), ``labels (B,)`` long;
    returns ``(B, ...)``.
    """
    null = torch.full_like(labels, null_label)
    out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
    if out.shape[0] != 2 * x.shape[0]:
        raise ValueError(f"model returned shape {tuple(out.shape)} for a doubled batch of shape "
                         f"{(2 * x.shape[0], *x.shape[1:])}; a velocity model must return the shape of its input")
    cond, uncond = out.chunk(2)
    return uncond + guidance_scale * (cond - uncond)


__all__ = ["check_guidance", "guidance_scale_from_w", "guided_velocity", "w_from_guidance_scale"]
