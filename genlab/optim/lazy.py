"""Lazy embedding rows for any optimizer (Su, kexue.fm 9736; blocks.md section 9).

With sign-based updates (Lion, Tiger) a row of an embedding table whose tokens stop appearing
keeps a non-zero momentum, so every later step moves it by a full ``lr`` towards
``-sign(m) / weight_decay``. Lazy rows leave a row whose gradient is all zero untouched: its
value and every per-parameter state tensor of the same shape (momentum) are restored after the
wrapped optimizer's step. :class:`~genlab.optim.Tiger` has the same rule built in
(``lazy_embeddings``); :func:`lazy_rows` gives it to :class:`~genlab.optim.Lion` and AdamW.
"""

from __future__ import annotations

import torch
from torch import Tensor


def lazy_rows(optimizer: torch.optim.Optimizer) -> tuple:
    """Make ``optimizer``'s groups of kind ``"embedding"`` (:func:`genlab.optim.param_groups`) lazy: rows
    ``(V, D)`` with an all-zero gradient keep their value and state through every ``step()``.

    Works through step hooks, so the optimizer stays what it was (schedulers, Accelerate and
    checkpoints see no difference). With ``.grad`` accumulation a row is untouched when the whole
    window's gradient is zero. Returns the two hook handles (``.remove()`` undoes it).
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
    if not any(g.get("kind") == "embedding" for g in optimizer.param_groups):
        raise ValueError("the optimizer has no parameter group of kind 'embedding' (build it from genlab.optim.param_groups)")
    saved: list = []

    @torch.no_grad()
    def before(opt, args, kwargs):
        saved.clear()
        for group in opt.param_groups:
            if group.get("kind") != "embedding":
                continue
            for p in group["params"]:
                if p.grad is None or p.ndim != 2:
                    continue
                idle = ~p.grad.ne(0).any(-1)  # (V,) rows not in this batch
                state = [(s, s[idle].clone()) for s in opt.state.get(p, {}).values() if isinstance(s, Tensor) and s.shape == p.shape]
                saved.append((p, idle, p[idle].clone(), state))

    @torch.no_grad()
    def after(opt, args, kwargs):
        for p, idle, value, state in saved:
            p[idle] = value
            for s, old in state:
                s[idle] = old
        saved.clear()

    return optimizer.register_step_pre_hook(before), optimizer.register_step_post_hook(after)


__all__ = ["lazy_rows"]
