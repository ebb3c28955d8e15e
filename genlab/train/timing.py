"""Side-by-side timing of training steps: the median per function over interleaved rounds, so slow drifts
of a shared machine (other processes, clock changes) hit every contender alike. Used by
``scripts/compare_tokenizers.py`` and the benchmark modules under ``scripts/benchmarks``."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(fns: dict[str, Callable[[], object]], device: torch.device, warmup: int = 3,
                      rounds: int = 15) -> dict[str, float]:
    """Median time per function, alternating the functions each round so slow drifts of the
    machine (other processes, clock changes) hit every contender alike.

    On CUDA each call is timed by CUDA events around it, read after a synchronisation (the time
    the device spent from the first queued kernel to the last, host launch gaps included)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {k: statistics.median(v) for k, v in times.items()}


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes: CUDA events on CUDA, the host clock elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sync(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


__all__ = ["interleaved_times", "sync", "timed"]
