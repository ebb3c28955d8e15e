"""Helpers shared by the optimizers: argument checks and multi-tensor bucketing."""

from __future__ import annotations

import math

from torch import Tensor


def check_hyper(**values: float) -> None:
    """Raise ``ValueError`` for a hyperparameter that is negative or not finite."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}={value!r} must be a finite number >= 0")


def params_with_grad(group: dict, optimizer: str) -> tuple[list[Tensor], list[Tensor]]:
    """Parameters of ``group`` that have a gradient, and those gradients (dense only)."""
    params, grads = [], []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise TypeError(f"{optimizer} does not support sparse gradients (parameter of shape {tuple(p.shape)})")
        params.append(p)
        grads.append(p.grad)
    return params, grads


def grouped_by_device_and_dtype(tensors: list[Tensor]) -> list[list[int]]:
    """Indices of ``tensors`` bucketed by (device, dtype): one multi-tensor kernel per bucket."""
    buckets: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        buckets.setdefault((t.device, t.dtype), []).append(i)
    return list(buckets.values())


__all__ = ["check_hyper", "grouped_by_device_and_dtype", "params_with_grad"]
