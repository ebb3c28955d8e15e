"""Tiger: "Tight-fisted Optimizer" (Su 9512; bojone/tiger ``tiger.py``).

Lion with ``beta1 = beta2 = beta`` and a per-tensor relative learning rate:

    m_t = beta m_{t-1} + (1 - beta) g_t
    theta_t = theta_{t-1} - eta_p (sign(m_t) + lambda_p theta_{t-1})

==========  ===========================================  ==========  =============
kind        eta_p                                        lambda_p    shrink centre
==========  ===========================================  ==========  =============
bias        0.5 lr                                       0           0
gain        0.5 lr                                       0           1
embedding   lr * max(RMS(row), rms_floor), per row       wd          0
matrix      lr * max(RMS(theta), rms_floor), per tensor  wd          0
==========  ===========================================  ==========  =============

Kinds come from the parameter groups (:func:`genlab.optim.param_groups` tags them by module type;
a group without ``kind`` uses ``ndim >= 2`` -> matrix, else bias). One state tensor (``exp_avg``)
per parameter: half of AdamW's optimizer state.

* ``rms_floor`` (1e-3, as bert4keras' AdaFactor) lets zero-initialised matrices move; 0 reproduces
  the reference, where they stay frozen.
* NaN/Inf guard: a tensor whose gradient is not finite skips its step (``m`` unchanged) and
  shrinks toward its centre, ``theta <- (theta - c) * shrink_ratio + c``; other tensors step
  normally. Each such event is logged (logger ``genlab.optim.tiger``) and listed in
  :attr:`Tiger.last_skipped`. ``nan_only=True`` checks NaN only, like the reference. Costs one
  host synchronisation per step.
* ``grad_accum_steps = k`` accumulates inside the momentum (Su 8634): ``step()`` every micro-step,
  parameters move every k-th; exactly Tiger on the window's mean gradient. With Accelerate's
  gradient accumulation keep ``k = 1`` (its ``step()`` is a no-op on non-sync micro-steps).
* ``lazy_embeddings``: embedding rows whose gradient is all zero keep their value and momentum
  (against rare-token drift to ``-sign(m)/lambda``, Su 9736).
* ``relative=False`` turns the per-parameter rules off: every tensor steps by ``lr`` and decays
  by its group's ``weight_decay``, vectors included (Lion with ``beta1 = beta2 = beta``); kinds
  then only pick the NaN/Inf shrink centre.
* Every parameter group's hyperparameters are checked when it is added and at each step (a
  scheduler may change them); errors name the group's index.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Iterable

import torch
from torch import Tensor

from genlab.optim.groups import DECAYED, KINDS
from genlab.optim.utils import check_fraction, check_hyper, grouped_by_device_and_dtype, naming_group, params_with_grad

logger = logging.getLogger(__name__)


def _eta(norms: Tensor, numels: list[int], lr: float, floor: float) -> Tensor:
    """``lr * max(||theta|| / sqrt(n), floor)`` for a vector of norms (same op order in both paths)."""
    inv_sqrt = torch.tensor([1.0 / math.sqrt(n) for n in numels], dtype=norms.dtype, device=norms.device)
    return (norms * inv_sqrt).clamp_min(floor) * lr


def _momentum(m: Tensor, g: Tensor, beta: float, k: int, t: int, rows: Tensor | None = None) -> None:
    """``m <- b1 m + (1 - beta)/k g`` (``b1 = beta`` on a window's first micro-step, else 1); only ``rows`` when given."""
    if rows is not None:  # lazy embedding (k = 1)
        m.copy_(torch.where(rows, m.lerp(g, 1 - beta), m))
    elif k == 1:
        m.lerp_(g, 1 - beta)
    else:
        if t % k == 0:
            m.mul_(beta)
        m.add_(g, alpha=(1 - beta) / k)


def _momentum_foreach(ms: list[Tensor], gs: list[Tensor], beta: float, k: int, t: int) -> None:
    if k == 1:
        torch._foreach_lerp_(ms, gs, 1 - beta)
        return
    if t % k == 0:
        torch._foreach_mul_(ms, beta)
    torch._foreach_add_(ms, gs, alpha=(1 - beta) / k)


def _plain(p: Tensor, m: Tensor, lr: float, wd: float) -> None:
    """``theta <- theta (1 - lr wd) - lr sign(m)`` (Lion's parameter step)."""
    if wd:
        p.mul_(1 - lr * wd)
    p.add_(m.sign(), alpha=-lr)


def _update(p: Tensor, m: Tensor, kind: str, lr: float, wd: float, floor: float, relative: bool,
            rows: Tensor | None = None) -> None:
    """One tensor's parameter step by kind (the table in the module docstring)."""
    wd = wd if kind in DECAYED or not relative else 0.0
    if kind == "embedding" and (relative or rows is not None):
        eta = (torch.linalg.vector_norm(p, dim=-1, keepdim=True) / math.sqrt(p.shape[-1])).clamp_min(floor) * lr if relative else lr
        new = p - eta * (m.sign() + wd * p)  # per-row rate (V, 1)
        p.copy_(new if rows is None else torch.where(rows, new, p))
    elif not relative:
        _plain(p, m, lr, wd)
    elif kind in ("bias", "gain"):
        _plain(p, m, 0.5 * lr, 0.0)
    else:
        eta = _eta(torch.linalg.vector_norm(p)[None], [p.numel()], lr, floor)[0]
        update = m.sign() * eta
        if wd:
            p.mul_(1 - eta * wd)
        p.sub_(update)


def _update_foreach(ps: list[Tensor], ms: list[Tensor], kind: str, lr: float, wd: float, floor: float, relative: bool) -> None:
    """:func:`_update` for tensors of one kind (not embeddings), device and dtype, on multi-tensor kernels."""
    wd = wd if kind in DECAYED or not relative else 0.0
    if not relative or kind in ("bias", "gain"):
        lr, wd = (lr, wd) if not relative else (0.5 * lr, 0.0)
        if wd:
            torch._foreach_mul_(ps, 1 - lr * wd)
        torch._foreach_add_(ps, torch._foreach_sign(ms), alpha=-lr)
        return
    eta = _eta(torch.stack(torch._foreach_norm(ps)), [p.numel() for p in ps], lr, floor).unbind()
    update = torch._foreach_sign(ms)
    torch._foreach_mul_(update, list(eta))
    if wd:
        torch._foreach_mul_(ps, [1 - e * wd for e in eta])
    torch._foreach_sub_(ps, update)


class Tiger(torch.optim.Optimizer):
    """Tiger as a ``torch.optim.Optimizer`` (see the module docstring).

    Args:
        params: parameters or groups; groups from :func:`genlab.optim.param_groups` carry ``kind``.
        lr: peak learning rate ``alpha`` (1e-3 to 2e-3; LAMB settings port unchanged).
        beta: momentum (0.965 for language, 0.945 for vision).
        weight_decay: ``lambda`` of matrices and embeddings (0.01).
        grad_accum_steps: micro-steps per update inside the momentum (keep 1 under Accelerate).
        shrink_ratio: NaN/Inf shrink factor (0.99).
        rms_floor: floor of the RMS in the relative learning rate (0 = reference).
        nan_only: guard against NaN only (reference) instead of NaN and Inf.
        relative: per-parameter learning-rate rules on (default) or off.
        lazy_embeddings: leave embedding rows with an all-zero gradient untouched.
        foreach: multi-tensor kernels (True), the per-parameter loop (False), or None: kernels on
            accelerators and the loop on CPU.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, beta: float = 0.965, weight_decay: float = 0.01,
                 grad_accum_steps: int = 1, shrink_ratio: float = 0.99, rms_floor: float = 1e-3, nan_only: bool = False,
                 relative: bool = True, lazy_embeddings: bool = False, foreach: bool | None = None):
        _check_group(dict(lr=lr, beta=beta, weight_decay=weight_decay, shrink_ratio=shrink_ratio, rms_floor=rms_floor,
                          kind=None))
        if isinstance(grad_accum_steps, bool) or not isinstance(grad_accum_steps, int) or grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps={grad_accum_steps!r} must be an integer >= 1")
        if lazy_embeddings and grad_accum_steps > 1:
            raise ValueError("lazy_embeddings needs grad_accum_steps=1 (accumulate gradients in .grad instead)")
        defaults = dict(lr=lr, beta=beta, weight_decay=weight_decay, shrink_ratio=shrink_ratio, rms_floor=rms_floor,
                        nan_only=nan_only, relative=relative, lazy_embeddings=lazy_embeddings, foreach=foreach,
                        kind=None, micro_step=0)
        super().__init__(params, defaults)
        self.grad_accum_steps = grad_accum_steps
        self.last_skipped: list[str] = []

    def add_param_group(self, param_group: dict) -> None:
        with naming_group(len(self.param_groups)):
            _check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    def _exp_avg(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state["exp_avg"]

    def _bad_gradients(self, work: list[tuple]) -> list[set[int]]:
        """Indices of parameters with a non-finite gradient, per group, with one host sync.

        A float32 sum is finite iff every element is (short of overflow beyond 3e38) and costs a
        fraction of ``isfinite(g).all()`` or an inf-norm; the rare flagged tensors are then
        checked exactly (``isnan`` alone with ``nan_only``, as the reference).
        """
        sums, where = [], []
        for g_idx, (_, _, grads, _) in enumerate(work):
            sums += [g.sum(dtype=torch.float32) for g in grads]
            where += [(g_idx, i) for i in range(len(grads))]
        bad: list[set[int]] = [set() for _ in work]
        if not sums:
            return bad
        finite = torch.stack([s.to(sums[0].device) for s in sums]).isfinite().tolist()
        for (g_idx, i), ok in zip(where, finite):
            if ok:
                continue
            group, _, grads, _ = work[g_idx]
            g = grads[i]
            if bool(torch.isnan(g).any()) if group["nan_only"] else not bool(torch.isfinite(g).all()):
                bad[g_idx].add(i)
        return bad

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for index, group in enumerate(self.param_groups):
            with naming_group(index):
                _check_group(group)
            params, grads = params_with_grad(group, "Tiger")
            kinds = [group["kind"] or ("matrix" if p.ndim >= 2 else "bias") for p in params]
            work.append((group, params, grads, kinds))
        bad = self._bad_gradients(work)
        self.last_skipped = []
        for (group, params, grads, kinds), bad_idx in zip(work, bad):
            t = group["micro_step"]
            group["micro_step"] = t + 1
            if bad_idx:
                self._shrink(group, [params[i] for i in sorted(bad_idx)], [kinds[i] for i in sorted(bad_idx)])
            good = [i for i in range(len(params)) if i not in bad_idx]
            self._step_group(group, [params[i] for i in good], [grads[i] for i in good], [kinds[i] for i in good], t)
        if self.last_skipped:
            logger.warning("Tiger: non-finite gradient in %s; skipped their update and shrank them toward their "
                           "centre by %s", ", ".join(self.last_skipped), self.param_groups[0]["shrink_ratio"])
        return loss

    def _shrink(self, group: dict, params: list[Tensor], kinds: list[str]) -> None:
        """``theta <- (theta - c) r + c``, ``c`` = 1 for gains and 0 otherwise; the momentum is left alone."""
        r = group["shrink_ratio"]
        names = group.get("names")
        position = {id(q): j for j, q in enumerate(group["params"])}
        for p, kind in zip(params, kinds):
            if kind == "gain":
                p.sub_(1).mul_(r).add_(1)
            else:
                p.mul_(r)
            self.last_skipped.append(names[position[id(p)]] if names else f"parameter of shape {tuple(p.shape)}")

    def _step_group(self, group: dict, params: list[Tensor], grads: list[Tensor], kinds: list[str], t: int) -> None:
        k, beta = self.grad_accum_steps, group["beta"]
        boundary = (t + 1) % k == 0  # inside an accumulation window only the momentum moves
        lr, wd, floor, relative = group["lr"], group["weight_decay"], group["rms_floor"], group["relative"]
        exp_avgs = [self._exp_avg(p) for p in params]
        rows = {i: grads[i].ne(0).any(-1, keepdim=True) for i, kind in enumerate(kinds)  # (V, 1) rows in this batch
                if kind == "embedding" and group["lazy_embeddings"]}
        for idx in grouped_by_device_and_dtype(params):
            if not _use_foreach(group["foreach"], params[idx[0]]):
                for i in idx:  # one tensor at a time, while it is in cache
                    _momentum(exp_avgs[i], grads[i], beta, k, t, rows.get(i))
                    if boundary:
                        _update(params[i], exp_avgs[i], kinds[i], lr, wd, floor, relative, rows.get(i))
                continue
            for i in (i for i in idx if i in rows):
                _momentum(exp_avgs[i], grads[i], beta, k, t, rows[i])
            dense = [i for i in idx if i not in rows]
            if dense:
                _momentum_foreach([exp_avgs[i] for i in dense], [grads[i] for i in dense], beta, k, t)
            if not boundary:
                continue
            for kind in KINDS:
                members = [i for i in idx if kinds[i] == kind]
                if kind == "embedding":
                    for i in members:
                        _update(params[i], exp_avgs[i], kind, lr, wd, floor, relative, rows.get(i))
                elif members:
                    _update_foreach([params[i] for i in members], [exp_avgs[i] for i in members], kind, lr, wd, floor, relative)


def _check_group(group: dict) -> None:
    check_hyper(lr=group["lr"], weight_decay=group["weight_decay"], rms_floor=group["rms_floor"])
    beta = group["beta"]
    if isinstance(beta, (tuple, list)):
        raise TypeError(f"beta={beta!r} must be one number in [0, 1): Tiger uses beta1 = beta2 = beta "
                        "(Lion takes two betas)")
    check_fraction("beta", beta)
    check_fraction("shrink_ratio", group["shrink_ratio"], zero=False, one=True)
    kind = group["kind"]
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not supported; expected one of {KINDS}")


def _use_foreach(flag: bool | None, p: Tensor) -> bool:
    """Multi-tensor kernels on accelerators; on CPU the per-tensor loop keeps each tensor in cache
    across its five operations and measured about twice as fast (BENCHMARKS.md)."""
    return flag if flag is not None else p.device.type != "cpu"


__all__ = ["Tiger"]
