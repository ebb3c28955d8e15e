"""Random numbers of a training step as a function of (seed, rank, step), never of the run's history.

A resumed run must draw exactly what the uninterrupted run drew, and processes must not share
noise. Both hold by construction when every draw of step ``s`` on process ``r`` comes from a
generator seeded from ``(seed, r, s, ...)``: nothing depends on how many numbers were drawn
before, on whether the run was restarted, or on hidden draws (a DataLoader iterator drawing its
base seed, an evaluation sampling noise).

    g = step_generator(cfg.seed, rank, step, device=device)        # noise, times, latents, masks
    torch.randn(b, d, generator=g, device=device)
    reseed_global(cfg.seed, rank, step)                              # dropout and library draws

``reseed_global`` is the fallback for draws that cannot take a generator (``nn.Dropout``,
``F.scaled_dot_product_attention``'s dropout, library code): the harness calls it before every
step (``Run.steps``), so the global RNG carries no history from one step to the next.
"""

from __future__ import annotations

import numpy as np
import torch

# Keys that keep the streams of the harness apart from the scripts' own (seed, rank, step, micro).
GLOBAL_STREAM = 2**32 - 1


def step_seed(seed: int, rank: int, step: int, *keys: int) -> int:
    """A 63-bit seed mixed from ``(seed, rank, step, *keys)`` (numpy's SeedSequence hash: nearby
    tuples give unrelated seeds)."""
    entropy = [int(seed), int(rank), int(step), *map(int, keys)]
    if any(v < 0 for v in entropy):
        raise ValueError(f"step_seed needs non-negative integers; got {entropy}")
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] % 2**63)


def step_generator(seed: int, rank: int, step: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`step_seed`."""
    return torch.Generator(device=device).manual_seed(step_seed(seed, rank, step, *keys))


def reseed_global(seed: int, rank: int, step: int) -> None:
    """Seed the global torch RNG (every device) from ``(seed, rank, step)``."""
    torch.manual_seed(step_seed(seed, rank, step, GLOBAL_STREAM))


__all__ = ["reseed_global", "step_generator", "step_seed"]
