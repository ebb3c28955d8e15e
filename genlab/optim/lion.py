"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2; Su 9473).

    c_t = beta1 m_{t-1} + (1 - beta1) g_t
    theta_t = theta_{t-1} (1 - lr wd) - lr sign(c_t)
    m_t = beta2 m_{t-1} + (1 - beta2) g_t

One state tensor per parameter. Weight decay is multiplied by the learning rate (google/automl,
lion-pytorch's default ``decoupled_weight_decay=False``), so use a decay 3-10x AdamW's with a
learning rate 3-10x smaller. The default update runs on ``torch._foreach_*`` kernels, tensors
grouped by device and dtype; ``foreach=False`` runs the per-parameter loop that tests use as the
reference (same operations, bit-identical results).
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor

from genlab.optim.utils import check_hyper, grouped_by_device_and_dtype, params_with_grad


def lion_loop(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor], lr: float, beta1: float, beta2: float,
              weight_decay: float) -> None:
    """Per-parameter reference update (in place)."""
    for p, g, m in zip(params, grads, exp_avgs):
        if weight_decay:
            p.mul_(1 - lr * weight_decay)
        p.add_(torch.lerp(m, g, 1 - beta1).sign_(), alpha=-lr)
        m.lerp_(g, 1 - beta2)


def lion_foreach(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor], lr: float, beta1: float, beta2: float,
                 weight_decay: float) -> None:
    """Multi-tensor update (in place); tensors must share device and dtype."""
    if weight_decay:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
    update = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
    torch._foreach_sign_(update)
    torch._foreach_add_(params, update, alpha=-lr)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta2)


class Lion(torch.optim.Optimizer):
    """Lion as a ``torch.optim.Optimizer``.

    Args:
        params: parameters or groups (e.g. :func:`genlab.optim.param_groups`).
        lr: learning rate (1e-4 in google/automl; about 10x below AdamW's).
        betas: ``(beta1, beta2)``; (0.9, 0.99) default, (0.95, 0.98) for language models.
        weight_decay: decoupled decay, multiplied by ``lr``.
        foreach: multi-tensor kernels (default) or the per-parameter loop.
    """

    def __init__(self, params: Iterable, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, foreach: bool = True):
        check_hyper(lr=lr, weight_decay=weight_decay)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas={betas!r} must be two numbers in [0, 1)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, foreach=foreach))

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads = params_with_grad(group, type(self).__name__)
            exp_avgs = [self._exp_avg(p) for p in params]
            beta1, beta2 = group["betas"]
            update = lion_foreach if group["foreach"] else lion_loop
            for idx in grouped_by_device_and_dtype(params):
                update([params[i] for i in idx], [grads[i] for i in idx], [exp_avgs[i] for i in idx],
                       group["lr"], beta1, beta2, group["weight_decay"])
        return loss

    def _exp_avg(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state["exp_avg"]


__all__ = ["Lion", "lion_foreach", "lion_loop"]
