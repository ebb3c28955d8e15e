"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2; Su 9473).

    c_t = beta1 m_{t-1} + (1 - beta1) g_t
    theta_t = theta_{t-1} (1 - lr wd) - lr sign(c_t)
    m_t = beta2 m_{t-1} + (1 - beta2) g_t

One state tensor per parameter. Weight decay is multiplied by the learning rate (google/automl,
lion-pytorch's default ``decoupled_weight_decay=False``), so use a decay 3-10x AdamW's with a
learning rate 3-10x smaller. On accelerators the update runs on ``torch._foreach_*`` kernels,
tensors grouped by device and dtype; on CPU the per-parameter loop (the reference the tests
compare against: same operations, bit-identical results) is the default because it keeps each
tensor in cache across its operations, measured about twice as fast (BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor

from genlab.optim.utils import check_fraction, check_hyper, grouped_by_device_and_dtype, naming_group, params_with_grad


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
        foreach: multi-tensor kernels (True), the per-parameter loop (False), or None: kernels on
            accelerators and the loop on CPU.

    Every parameter group's ``lr``, ``betas`` and ``weight_decay`` are checked when the group is
    added and at each step (a scheduler may change them); errors name the group's index.
    """

    def __init__(self, params: Iterable, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, foreach: bool | None = None):
        _check_group(dict(lr=lr, betas=betas, weight_decay=weight_decay))
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, foreach=foreach))

    def add_param_group(self, param_group: dict) -> None:
        with naming_group(len(self.param_groups)):
            _check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            with naming_group(index):
                _check_group(group)
            params, grads = params_with_grad(group, type(self).__name__)
            exp_avgs = [self._exp_avg(p) for p in params]
            beta1, beta2 = group["betas"]
            for idx in grouped_by_device_and_dtype(params):
                use_foreach = group["foreach"] if group["foreach"] is not None else params[idx[0]].device.type != "cpu"
                update = lion_foreach if use_foreach else lion_loop
                update([params[i] for i in idx], [grads[i] for i in idx], [exp_avgs[i] for i in idx],
                       group["lr"], beta1, beta2, group["weight_decay"])
        return loss

    def _exp_avg(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state["exp_avg"]


def _check_group(group: dict) -> None:
    check_hyper(lr=group["lr"], weight_decay=group["weight_decay"])
    betas = group["betas"]
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"betas={betas!r} must be two numbers in [0, 1) (beta1, beta2)")
    for b in betas:
        try:
            check_fraction("beta", b)
        except (TypeError, ValueError):
            raise ValueError(f"betas={tuple(betas)!r} must be two numbers in [0, 1)") from None


__all__ = ["Lion", "lion_foreach", "lion_loop"]
