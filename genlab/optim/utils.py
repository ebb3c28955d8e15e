"""Helpers shared by the optimizers: argument checks and multi-tensor bucketing."""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

from torch import Tensor


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_hyper(**values: float) -> None:
    """Raise ``ValueError`` for a hyperparameter that is negative or not finite."""
    for name, value in values.items():
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}={value!r} must be a finite number >= 0")


def check_fraction(name: str, value, zero: bool = True, one: bool = False) -> None:
    """Raise unless ``value`` is a number in ``[0, 1)`` (``zero``/``one`` include the ends)."""
    interval = f"{'[' if zero else '('}0, 1{']' if one else ')'}"
    if not _is_number(value):
        raise TypeError(f"{name}={value!r} must be a number in {interval}")
    if not ((value >= 0 if zero else value > 0) and (value <= 1 if one else value < 1)):
        raise ValueError(f"{name}={value!r} must be in {interval}")


@contextmanager
def naming_group(index: int):
    """Prefix errors raised inside with ``parameter group {index}: ``."""
    try:
        yield
    except (TypeError, ValueError) as e:
        raise type(e)(f"parameter group {index}: {e}") from None


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


__all__ = ["check_fraction", "check_hyper", "grouped_by_device_and_dtype", "naming_group", "params_with_grad"]
