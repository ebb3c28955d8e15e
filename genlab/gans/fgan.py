"""f-GAN: the variational bound of an f-divergence as a GAN game (Nowozin, Cseke, Tomioka 2016).

``D_f(P||Q) = ∫ q f(p/q) dx`` with ``P`` = data, ``Q`` = model, ``f`` convex. The Fenchel conjugate
``f*(t) = sup_u (ut − f(u))`` gives the bound (f-GAN Eq. 4)

    D_f(P||Q) >= sup_T E_P[T(x)] − E_Q[f*(T(x))],   tight at T*(x) = f'(p(x)/q(x)),

and the critic is ``T = g_f(V)`` with ``V`` the network's unconstrained output and ``g_f`` the
output activation of f-GAN Table 2, mapping ℝ into ``dom f*`` (f-GAN Eq. 6):

    min_θ max_ω  E_P[g_f(V(x))] − E_Q[f*(g_f(V(x)))].

Divergences are **keyed by their generator function f**, because the names clash across sources:
the f-GAN paper's Table 1 prints "Pearson χ²" as ∫(q − p)²/p next to f = (u − 1)², which under its
own ∫q f(p/q) convention is ∫(p − q)²/q, and Su's re-tabulation (kexue.fm 6016) keeps the printed
formulas and swaps the f's. Here ``pearson`` is f = (u − 1)² (D_f = ∫(p − q)²/q, the conjugate
t²/4 + t used by f-GAN and public code) and ``neyman`` is f = (1 − u)²/u (D_f = ∫(q − p)²/p).

| key          | f(u)                           | D_f(P||Q)        | f*(t)            | g_f(v)                 |
|--------------|--------------------------------|------------------|------------------|------------------------|
| ``tv``         | ½|u − 1|                       | ½∫|p − q|        | t on |t| ≤ ½     | ½ tanh v               |
| ``kl``         | u log u                        | ∫p log(p/q)      | exp(t − 1)       | v                      |
| ``reverse_kl`` | −log u                         | ∫q log(q/p)      | −1 − log(−t)     | −exp(−v)               |
| ``pearson``    | (u − 1)²                       | ∫(p − q)²/q      | t²/4 + t         | v                      |
| ``neyman``     | (1 − u)²/u                     | ∫(q − p)²/p      | 2 − 2√(1 − t)    | 1 − exp(−v)            |
| ``hellinger``  | (√u − 1)²                      | ∫(√p − √q)²      | t/(1 − t)        | 1 − exp(−v)            |
| ``js``         | −(u+1)log((1+u)/2) + u log u   | 2·JS(P, Q)       | −log(2 − eᵗ)     | log 2 − softplus(−v)   |
| ``gan``        | u log u − (u+1) log(u+1)       | 2·JS − log 4     | −log(1 − eᵗ)     | −softplus(−v)          |

``f*(g_f(v))`` is implemented in ``v`` directly (``exp(v − 1)``, ``v − 1``, ``softplus(v)``, ...), never
as the composition, and losses run in float32 outside autocast: the exp-based conjugates overflow in
half precision. ``pearson``'s conjugate is t²/4 + t only for t ≥ −2 over u ≥ 0 (it is −1 below);
f-GAN uses the formula on all of ℝ with g_f = v, and so does genlab. ``gan`` has f(1) = −log 4, not 0:
it is kept because it is exactly the original GAN game (Goodfellow et al. 2014).

    div = FDivergence("kl")
    d_loss = div.d_loss(critic(real), critic(fake.detach()))      # minimise: −(the variational bound)
    g_loss = div.g_loss(critic(fake), mode="nonsat")              # or "saddle"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.gans.checks import check_same_batch, check_scores, wide

LOG2 = math.log(2.0)
_Fn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class _Row:
    """One row of the divergence table (all functions elementwise, any float dtype)."""

    f: _Fn  # generator function f(u), u > 0
    conjugate: _Fn  # f*(t) on dom f*
    domain: tuple[float, float, bool]  # (low, high, closed): dom f* is [low, high] if closed else (low, high)
    activation: _Fn  # g_f(v): ℝ -> dom f*
    conj_activation: _Fn  # f*(g_f(v)), numerically stable
    optimal_critic: _Fn  # T* = f'(p/q) as a function of log(p/q)
    optimal_logit: _Fn  # V* with g_f(V*) = T*, as a function of log(p/q)
    f_prime_1: float  # f'(1): the decision threshold on g_f(V)
    divergence: str  # what D_f is in terms of p and q


def _xlogx(u: Tensor) -> Tensor:
    return torch.special.xlogy(u, u)


TABLE: dict[str, _Row] = {
    "tv": _Row(
        f=lambda u: 0.5 * (u - 1).abs(),
        conjugate=lambda t: t,
        domain=(-0.5, 0.5, True),
        activation=lambda v: 0.5 * torch.tanh(v),
        conj_activation=lambda v: 0.5 * torch.tanh(v),
        optimal_critic=lambda lr: 0.5 * torch.sign(lr),
        optimal_logit=lambda lr: torch.sign(lr) * math.inf,  # the bound is attained at the saturated tanh
        f_prime_1=0.0,  # a subgradient: f is not differentiable at 1
        divergence="½∫|p − q| (total variation)",
    ),
    "kl": _Row(
        f=_xlogx,
        conjugate=lambda t: torch.exp(t - 1),
        domain=(-math.inf, math.inf, False),
        activation=lambda v: v,
        conj_activation=lambda v: torch.exp(v - 1),
        optimal_critic=lambda lr: 1 + lr,
        optimal_logit=lambda lr: 1 + lr,
        f_prime_1=1.0,
        divergence="∫p log(p/q) = KL(P||Q)",
    ),
    "reverse_kl": _Row(
        f=lambda u: -torch.log(u),
        conjugate=lambda t: -1 - torch.log(-t),
        domain=(-math.inf, 0.0, False),
        activation=lambda v: -torch.exp(-v),
        conj_activation=lambda v: v - 1,
        optimal_critic=lambda lr: -torch.exp(-lr),
        optimal_logit=lambda lr: lr,
        f_prime_1=-1.0,
        divergence="∫q log(q/p) = KL(Q||P)",
    ),
    "pearson": _Row(
        f=lambda u: (u - 1).square(),
        conjugate=lambda t: t.square() / 4 + t,
        domain=(-math.inf, math.inf, False),  # the formula; the conjugate over u >= 0 agrees for t >= −2
        activation=lambda v: v,
        conj_activation=lambda v: v.square() / 4 + v,
        optimal_critic=lambda lr: 2 * torch.expm1(lr),
        optimal_logit=lambda lr: 2 * torch.expm1(lr),
        f_prime_1=0.0,
        divergence="∫(p − q)²/q (Pearson χ² of P from Q)",
    ),
    "neyman": _Row(
        f=lambda u: (1 - u).square() / u,
        conjugate=lambda t: 2 - 2 * torch.sqrt(1 - t),
        domain=(-math.inf, 1.0, False),
        activation=lambda v: -torch.expm1(-v),
        conj_activation=lambda v: 2 - 2 * torch.exp(-v / 2),
        optimal_critic=lambda lr: -torch.expm1(-2 * lr),
        optimal_logit=lambda lr: 2 * lr,
        f_prime_1=0.0,
        divergence="∫(q − p)²/p (Neyman χ² of P from Q)",
    ),
    "hellinger": _Row(
        f=lambda u: (torch.sqrt(u) - 1).square(),
        conjugate=lambda t: t / (1 - t),
        domain=(-math.inf, 1.0, False),
        activation=lambda v: -torch.expm1(-v),
        conj_activation=lambda v: torch.expm1(v),
        optimal_critic=lambda lr: -torch.expm1(-lr / 2),
        optimal_logit=lambda lr: lr / 2,
        f_prime_1=0.0,
        divergence="∫(√p − √q)² (squared Hellinger)",
    ),
    "js": _Row(
        f=lambda u: -(u + 1) * torch.log((1 + u) / 2) + _xlogx(u),
        conjugate=lambda t: -torch.log(2 - torch.exp(t)),
        domain=(-math.inf, LOG2, False),
        activation=lambda v: LOG2 - F.softplus(-v),
        conj_activation=lambda v: F.softplus(v) - LOG2,
        optimal_critic=lambda lr: LOG2 - F.softplus(-lr),
        optimal_logit=lambda lr: lr,
        f_prime_1=0.0,
        divergence="2·JS(P, Q) (f-GAN's Jensen-Shannon)",
    ),
    "gan": _Row(
        f=lambda u: _xlogx(u) - torch.special.xlogy(u + 1, u + 1),
        conjugate=lambda t: -torch.log(-torch.expm1(t)),
        domain=(-math.inf, 0.0, False),
        activation=lambda v: -F.softplus(-v),
        conj_activation=lambda v: F.softplus(v),
        optimal_critic=lambda lr: -F.softplus(-lr),
        optimal_logit=lambda lr: lr,
        f_prime_1=-LOG2,
        divergence="2·JS(P, Q) − log 4 (the original GAN)",
    ),
}

ALIASES = {
    "total_variation": "tv", "reverse": "reverse_kl", "kl_reverse": "reverse_kl", "chi2_pearson": "pearson",
    "chi2_neyman": "neyman", "squared_hellinger": "hellinger", "jensen_shannon": "js", "original": "gan",
}
G_MODES = ["nonsat", "saddle"]


class FDivergence:
    """One f-divergence of the table (module docstring) with its GAN losses.

    Args:
        key: a key of :data:`TABLE` (``tv``, ``kl``, ``reverse_kl``, ``pearson``, ``neyman``,
            ``hellinger``, ``js``, ``gan``) or an alias in :data:`ALIASES`.
        logit_clip: if set, critic outputs are clamped to ``[−logit_clip, logit_clip]`` before the
            losses (an explicit option against the exp-based conjugates overflowing; off by default).

    Critic outputs ``v`` are the unconstrained logits ``V(x)``, shape ``(B,)`` or ``(B, 1)``.
    """

    def __init__(self, key: str, logit_clip: float | None = None):
        if not isinstance(key, str):
            raise TypeError(f"divergence key must be a string; got {type(key).__name__}")
        name = ALIASES.get(key, key)
        if name not in TABLE:
            raise ValueError(f"unknown divergence {key!r}; expected one of {sorted(TABLE)} "
                             f"(aliases: {sorted(ALIASES)})")
        if logit_clip is not None and not (isinstance(logit_clip, (int, float)) and logit_clip > 0):
            raise ValueError(f"logit_clip={logit_clip!r} must be a positive number or None")
        self.key = name
        self.logit_clip = logit_clip
        self._row = TABLE[name]

    def __repr__(self) -> str:
        clip = f", logit_clip={self.logit_clip}" if self.logit_clip is not None else ""
        return f"FDivergence({self.key!r}{clip})"

    # ------------------------------------------------------------------ the table

    @property
    def divergence(self) -> str:
        """What ``D_f(P||Q)`` is, in terms of the data density p and the model density q."""
        return self._row.divergence

    @property
    def threshold(self) -> float:
        """``f'(1)``: ``g_f(V(x)) > f'(1)`` classifies ``x`` as real (the value at ``p = q``)."""
        return self._row.f_prime_1

    @property
    def domain(self) -> tuple[float, float, bool]:
        """``dom f*`` as ``(low, high, closed)``."""
        return self._row.domain

    def f(self, u: Tensor) -> Tensor:
        """The generator function ``f(u)``, ``u > 0``."""
        return self._row.f(u)

    def conjugate(self, t: Tensor) -> Tensor:
        """``f*(t)`` for ``t`` in ``dom f*`` (raises ``ValueError`` outside it)."""
        low, high, closed = self._row.domain
        inside = (t >= low) & (t <= high) if closed else (t > low) & (t < high)
        if not bool(inside.all()):
            bracket = f"[{low}, {high}]" if closed else f"({low}, {high})"
            raise ValueError(f"conjugate of {self.key!r} is defined on {bracket}; got values from "
                             f"{t.min().item():.4g} to {t.max().item():.4g}")
        return self._row.conjugate(t)

    def activation(self, v: Tensor) -> Tensor:
        """``g_f(v)``: critic logits -> ``dom f*``."""
        return self._row.activation(v)

    def conj_of_activation(self, v: Tensor) -> Tensor:
        """``f*(g_f(v))`` in its numerically stable closed form."""
        return self._row.conj_activation(v)

    def optimal_critic(self, log_ratio: Tensor) -> Tensor:
        """``T*(x) = f'(p(x)/q(x))`` from ``log(p/q)``: the critic that makes the bound tight."""
        return self._row.optimal_critic(log_ratio)

    def optimal_logit(self, log_ratio: Tensor) -> Tensor:
        """The logit ``V*`` with ``g_f(V*) = T*``; ``±inf`` for ``tv``, whose optimum saturates tanh."""
        return self._row.optimal_logit(log_ratio)

    # ------------------------------------------------------------------ losses

    def _prepare(self, name: str, v: Tensor) -> Tensor:
        v = wide(check_scores(name, v))
        if self.logit_clip is not None:
            v = v.clamp(-self.logit_clip, self.logit_clip)
        return v

    def bound(self, v_real: Tensor, v_fake: Tensor) -> Tensor:
        """The variational lower bound ``mean g_f(V(real)) − mean f*(g_f(V(fake)))`` (float32)."""
        check_same_batch("v_real", v_real, "v_fake", v_fake)
        with torch.autocast(v_real.device.type, enabled=False):
            real, fake = self._prepare("v_real", v_real), self._prepare("v_fake", v_fake)
            return self.activation(real).mean() - self.conj_of_activation(fake).mean()

    def d_loss(self, v_real: Tensor, v_fake: Tensor) -> Tensor:
        """Critic loss (minimised): ``−bound``; ``v_real, v_fake (B,)`` logits of real and fake batches."""
        return -self.bound(v_real, v_fake)

    def g_loss(self, v_fake: Tensor, mode: str = "nonsat") -> Tensor:
        """Generator loss on the logits ``v_fake (B,)`` of generated samples.

        ``"saddle"``: ``−mean f*(g_f(V))``, the minimax game itself (f-GAN Eq. 6).
        ``"nonsat"``: ``−mean g_f(V)``, f-GAN §3.2's alternative with the same fixed point (for ``gan``
        the usual non-saturating ``softplus(−V)``); it trains faster.
        """
        if mode not in G_MODES:
            raise ValueError(f"mode={mode!r} is not supported; expected one of {G_MODES}")
        with torch.autocast(v_fake.device.type, enabled=False):
            v = self._prepare("v_fake", v_fake)
            if mode == "saddle":
                return -self.conj_of_activation(v).mean()
            return -self.activation(v).mean()

    @torch.no_grad()
    def accuracy(self, v_real: Tensor, v_fake: Tensor) -> dict[str, Tensor]:
        """Fraction of real samples with ``g_f(V) > f'(1)`` and of fake samples at or below it (0-d tensors)."""
        with torch.autocast(v_real.device.type, enabled=False):
            real, fake = wide(check_scores("v_real", v_real)), wide(check_scores("v_fake", v_fake))
            return {"acc_real": (self.activation(real) > self.threshold).float().mean(),
                    "acc_fake": (self.activation(fake) <= self.threshold).float().mean()}


DIVERGENCES = list(TABLE)

__all__ = ["ALIASES", "DIVERGENCES", "FDivergence", "G_MODES", "TABLE"]
