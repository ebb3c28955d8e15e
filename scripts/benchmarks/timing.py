"""Timing helpers shared by the benchmark modules: warm-up, then the median of many runs."""

from __future__ import annotations

import gc
import re
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from genlab.train.timing import interleaved_times, sync, timed  # noqa: F401 (the benchmark modules import them from here)


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


def rss_peak(fn: Callable[[], object]) -> int | None:
    """Peak resident memory (bytes) that ``fn()`` adds to the process on Linux; ``None`` elsewhere.

    Resets the kernel's high-water mark (``echo 5 > /proc/self/clear_refs``), runs ``fn`` and
    returns ``VmHWM`` minus the ``VmRSS`` before it. Start the process with
    ``MALLOC_MMAP_THRESHOLD_=65536`` so glibc maps every large tensor separately and returns it to
    the system when freed: then resident memory follows the live tensors, and memory freed before
    ``fn`` cannot be reused silently inside it.
    """
    status, clear = Path("/proc/self/status"), Path("/proc/self/clear_refs")
    if not status.exists() or not clear.exists():
        return None
    gc.collect()
    try:
        clear.write_text("5")
    except OSError:
        return None
    base = _status_kib(status, "VmRSS")
    fn()
    return (_status_kib(status, "VmHWM") - base) * 1024


def _status_kib(status: Path, key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+) kB", status.read_text()).group(1))
