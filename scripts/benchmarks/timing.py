"""Timing helpers shared by the benchmark modules: warm-up, then the median of many runs."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], object], device: torch.device, warmup: int = 3, repeats: int = 20,
                min_seconds: float = 0.5) -> float:
    """Median wall time of ``fn()`` in seconds after ``warmup`` calls (at least ``repeats`` runs,
    more until ``min_seconds`` have passed)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_seconds and len(times) < 10 * repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_times(fns: dict[str, Callable[[], object]], device: torch.device, warmup: int = 3,
                      rounds: int = 15) -> dict[str, float]:
    """Median time per function, alternating the functions each round so slow drifts of the
    machine (other processes, clock changes) hit every contender alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_memory(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak bytes allocated by ``fn()`` on CUDA; ``None`` on CPU (no allocator statistics)."""
    if device.type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device) - base
