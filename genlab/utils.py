"""Tiny helpers shared by every module: argument checks that raise clear errors, image rounding."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import Tensor


def exists(value: Any) -> bool:
    return value is not None


def default(value: Any, fallback: Any) -> Any:
    return value if value is not None else fallback


def check_finite(name: str, tensor: Tensor) -> None:
    """Raise ``ValueError`` if ``tensor`` holds NaN or Inf.

    One reduction (a sum) instead of an elementwise mask: the sum of finite float32 values is
    finite unless it overflows; only then are the values counted one by one, so large finite
    values (a sum beyond 3.4e38) pass.
    """
    if not torch.isfinite(tensor.detach().float().sum()):
        bad = (~torch.isfinite(tensor)).sum().item()
        if bad == 0:
            return
        raise ValueError(f"{name} contains NaN or Inf ({bad} of {tensor.numel()} values); expected finite values")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; expected one of {choices}")


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def to_uint8(images: Tensor) -> Tensor:
    """Images in ``[-1, 1]`` -> uint8 ``[0, 255]``, rounded to nearest (``127.5 (x + 1)``), never truncated."""
    return images.detach().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
