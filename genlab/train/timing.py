"""Side-by-side timing of training steps: the median per function over interleaved rounds, so slow drifts
of a shared machine (other processes, clock changes) hit every contender alike. Used by
``scripts/compare_tokenizers.py``; the benchmark modules under ``scripts/benchmarks`` time the same way."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(fns: dict[str, Callable[[], object]], device: torch.device, warmup: int = 3,
                      rounds: int = 15) -> dict[str, float]:
    """Median seconds per call of each function after ``warmup`` calls, alternating the functions each round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


__all__ = ["interleaved_times"]
