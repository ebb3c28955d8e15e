"""GAN objectives designed from the likelihood ratio (Basioti & Moustakides, "Designing GANs: A
Likelihood Ratio Approach", arXiv 2002.00865; re-derived by Su, kexue.fm 7210).

Labelling as in Su: ``p`` = real, ``q`` = fake, ``r = q/p``. A pair of scalar functions ``φ, ψ`` on a
range ``Ω`` defines the discriminator game

    max_{t(·) ∈ Ω}  E_p[φ(t(x))] + E_q[ψ(t(x))],

whose pointwise optimum is ``t*(x) = ω(q(x)/p(x))``, a monotone function of the likelihood ratio,
provided (Su's Conclusion 1) ``t ↦ φ(t) + rψ(t)`` has a unique maximiser ``ω(r)``, monotone in r, and
``d(r) = max_t [φ(t) + rψ(t)]`` is minimal at ``r = 1`` (``ψ(ω(1)) = 0``, reached by shifting ψ by a
constant, which leaves the game unchanged). The recipe: pick ω strictly increasing and ``ρ > 0``, then
``φ' = −ω⁻¹(t)ρ(t)`` and ``ψ' = ρ(t)``; conversely ``ω⁻¹(t) = −φ'(t)/ψ'(t)``, which :meth:`ratio` uses
to read the ratio ``q/p`` off a trained discriminator (it should approach 1 as the generator learns).

**Decoupled generator** (Su's Conclusion 2): keep the game for the discriminator and let the
generator minimise ``E_q[β(t(x))]`` for any ``(α, β)`` with ``d_G(r) = α(ω(r)) + rβ(ω(r))`` minimal
at ``r = 1`` once the term linear in ``r − 1`` is removed: the generator minimises ``∫ p d_G(q/p)``
over densities, and ``∫ p (r − 1) = ∫ q − ∫ p = 0``, so a linear term changes nothing (without this
reading Su's own examples fail: ``d_G = r log r`` of example A is minimal at ``1/e``).

Examples (:data:`EXAMPLES`; every ψ normalised so that ``ψ(ω(1)) = 0``):

| name | φ(t) | ψ(t) | ω(r) | generator |
|---|---|---|---|---|
| ``gan`` | log(1 − σ(t)) | log 2 + log σ(t) | log r | ψ (the saddle) |
| ``gan_probability`` | log(1 − t) | log 2 + log t, Ω = (0, 1) | r/(1 + r) | ψ |
| ``exponential`` | −eᵗ | 1 − e⁻ᵗ | ½ log r | ψ (squared Hellinger) |
| ``gan_kl`` (A) | as ``gan`` | as ``gan`` | log r | β = t, α = 0 (d_G = r log r) |
| ``gan_nonsat`` (B) | as ``gan`` | as ``gan`` | log r | α = β = log(1 + eᵗ) |
| ``lsgan`` (C) | −(t − a)² | (b − a)²/4 − (t − b)² | (a + br)/(1 + r) | α = β = ((2t − a − b)/(b − a))² |

    lr = EXAMPLES["exponential"]()
    lr.validate()                                  # raises ValueError naming a violated condition
    d_loss = lr.d_loss(critic(real), critic(fake.detach()))
    g_loss = lr.g_loss(critic(fake))
    ratio = lr.ratio(critic(fake))                 # estimates q/p on the fake batch
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.gans.checks import check_same_batch, check_scores, wide

LOG2 = math.log(2.0)
Fn = Callable[[Tensor], Tensor]


@dataclass
class ConstructionReport:
    """What :func:`check_construction` found on its grid.

    Attributes:
        r: likelihood ratios ``q/p`` checked, ``(R,)`` float64, with ``r = 1`` in the middle.
        omega: the maximiser ``ω(r)`` of ``φ(t) + rψ(t)`` for each ``r`` (``(R,)``; NaN where none).
        d: ``d(r) = max_t [φ(t) + rψ(t)]``, ``(R,)``.
        psi_at_one: ``ψ(ω(1))``; 0 when ψ is normalised (otherwise shift ψ by ``−psi_at_one``).
        generator_d: ``α(ω(r)) + rβ(ω(r))`` when a generator ``β`` was given, else ``None``.
        increasing: whether ω increases with r (ρ > 0) or decreases (swapped labels).
        problems: the violated conditions, in words; empty when the construction is valid.
    """

    r: Tensor
    omega: Tensor
    d: Tensor
    psi_at_one: float
    generator_d: Tensor | None = None
    increasing: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _derivative(fn: Fn, t: Tensor) -> Tensor:
    with torch.enable_grad():
        t = t.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(t).sum(), t)
    return grad


def check_construction(phi: Fn, psi: Fn, t_range: tuple[float, float], beta: Fn | None = None,
                       alpha: Fn | None = None, r_range: float = 100.0, num_r: int = 81,
                       num_t: int = 8001) -> ConstructionReport:
    """Check the conditions of the likelihood-ratio construction numerically (float64).

    On a log-spaced grid of ``r ∈ [1/r_range, r_range]`` (``num_r`` odd, ``r = 1`` in the middle) and
    a grid of ``num_t`` points of ``t ∈ t_range`` (inside Ω):

    1. ``φ(t) + rψ(t)`` has a unique maximiser ``ω(r)`` inside ``t_range`` (strictly increasing, then
       strictly decreasing), refined by bisection on ``φ'(t) + rψ'(t) = 0``, and ω is strictly
       monotone in r;
    2. ``d(r) = max_t [φ(t) + rψ(t)]`` is minimal at ``r = 1`` (the normalisation ``ψ(ω(1)) = 0``);
    3. with ``beta`` (and ``alpha``, default 0): ``d_G(r) = α(ω(r)) + rβ(ω(r))`` is strictly above
       its tangent at ``r = 1`` (minimal at 1 up to the linear term, see the module docstring), and
       β is not identically zero.

    ``phi, psi, beta, alpha`` are elementwise torch functions of ``t``. Returns a
    :class:`ConstructionReport`; its ``problems`` list what failed.
    """
    lo, hi = float(t_range[0]), float(t_range[1])
    if not lo < hi:
        raise ValueError(f"t_range={t_range!r} must be (low, high) with low < high")
    if not r_range > 1:
        raise ValueError(f"r_range={r_range!r} must be > 1")
    if num_r < 5 or num_r % 2 == 0:
        raise ValueError(f"num_r={num_r!r} must be an odd integer >= 5 (r = 1 sits in the middle)")
    half = num_r // 2
    r = torch.exp(torch.arange(-half, half + 1, dtype=torch.float64) * (math.log(r_range) / half))
    r[half] = 1.0
    t = torch.linspace(lo, hi, num_t, dtype=torch.float64)
    phi_t, psi_t = phi(t), psi(t)
    problems: list[str] = []
    if not (torch.isfinite(phi_t).all() and torch.isfinite(psi_t).all()):
        problems.append(f"φ or ψ is not finite everywhere on t_range={t_range}; choose a range inside Ω")
        nan = torch.full_like(r, math.nan)
        return ConstructionReport(r, nan, nan, math.nan, problems=problems)

    # 1. a unique interior maximiser for every r
    values = phi_t[None, :] + r[:, None] * psi_t[None, :]  # (R, T)
    idx = values.argmax(1)
    steps = values.diff(dim=1)  # (R, T - 1)
    before = torch.arange(num_t - 1)[None, :] < idx[:, None]
    unimodal = torch.where(before, steps > 0, steps < 0).all(1)
    interior = (idx > 0) & (idx < num_t - 1)
    for name, bad in (("has its maximum at an end of t_range (ω(r) outside the range checked)", ~interior),
                      ("is not unimodal in t (no unique maximiser)", ~unimodal)):
        if bad.any():
            shown = ", ".join(f"{v:.3g}" for v in r[bad][:4].tolist())
            problems.append(f"φ(t) + rψ(t) {name} for r = {shown}{' ...' if bad.sum() > 4 else ''}")
    if problems:
        nan = torch.full_like(r, math.nan)
        return ConstructionReport(r, nan, values.max(1).values, math.nan, problems=problems)

    # refine ω(r) by bisection on the sign of φ'(t) + rψ'(t) between the grid neighbours of the maximum
    left, right = t[idx - 1], t[idx + 1]
    for _ in range(60):
        mid = (left + right) / 2
        slope = _derivative(phi, mid) + r * _derivative(psi, mid)
        left, right = torch.where(slope > 0, mid, left), torch.where(slope > 0, right, mid)
    omega = (left + right) / 2
    d = phi(omega) + r * psi(omega)
    step = omega.diff()
    increasing = bool((step > 0).all())
    if not (increasing or (step < 0).all()):
        problems.append("the maximiser ω(r) is not strictly monotone in r")

    # 2. d(r) minimal at r = 1
    psi_at_one = psi(omega[half : half + 1]).item()
    scale = d.abs().max().item() + 1.0
    if (d < d[half] - 1e-9 * scale).any():
        at = r[d.argmin()].item()
        problems.append(f"d(r) = max_t [φ + rψ] is minimal at r = {at:.3g}, not at r = 1: ψ(ω(1)) = {psi_at_one:.6g}; "
                        f"shift ψ by {-psi_at_one:.6g} (the game is unchanged)")

    # 3. the decoupled generator
    generator_d = None
    if beta is not None:
        alpha = alpha or torch.zeros_like
        generator_d = alpha(omega) + r * beta(omega)
        if not torch.isfinite(generator_d).all():
            problems.append("α(ω(r)) + rβ(ω(r)) is not finite on the grid")
        elif bool((beta(t) == 0).all()):
            problems.append("β is identically zero: the generator gets no signal")
        else:
            # slope at r = 1 from ω at r = 1 ± h (ω from the same bisection on a 3-point grid)
            near = check_construction(phi, psi, t_range, r_range=1 + 1e-5, num_r=5, num_t=num_t)
            r_near, omega_near = near.r[[0, 4]], near.omega[[0, 4]]
            g_near = alpha(omega_near) + r_near * beta(omega_near)
            slope = ((g_near[1] - g_near[0]) / (r_near[1] - r_near[0])).item()
            excess = generator_d - generator_d[half] - slope * (r - 1)
            gscale = generator_d.abs().max().item() + 1.0
            off = torch.arange(num_r) != half
            if (excess[off] <= 1e-9 * gscale).any():
                at = r[off][excess[off].argmin()].item()
                problems.append(f"α(ω(r)) + rβ(ω(r)) is not minimal at r = 1 up to its linear term "
                                f"(it dips to or below its tangent at r = {at:.3g})")
    return ConstructionReport(r, omega, d, psi_at_one, generator_d, increasing, problems)


class LikelihoodRatioGAN:
    """A discriminator game ``max E_p φ(t) + E_q ψ(t)`` and its generator loss (module docstring).

    Args:
        phi, psi: elementwise torch functions of the discriminator output ``t``.
        beta, alpha: the decoupled generator ``min E_q β(t)``; ``alpha`` (default 0) only enters
            :meth:`validate`. Without ``beta`` the generator plays the saddle, ``min E_q ψ(t)``.
        t_range: the part of Ω that :meth:`validate` searches.
        name: shown in ``repr`` and error messages.

    Discriminator outputs ``t`` have shape ``(B,)`` or ``(B, 1)``; losses run in float32 outside autocast.
    """

    def __init__(self, phi: Fn, psi: Fn, beta: Fn | None = None, alpha: Fn | None = None,
                 t_range: tuple[float, float] = (-10.0, 10.0), name: str = "custom"):
        for arg, fn in (("phi", phi), ("psi", psi), ("beta", beta), ("alpha", alpha)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{arg} must be a callable on tensors; got {type(fn).__name__}")
        if alpha is not None and beta is None:
            raise ValueError("alpha is only used with beta (the decoupled generator); pass beta too")
        self.phi, self.psi, self.beta, self.alpha = phi, psi, beta, alpha
        self.t_range = t_range
        self.name = name

    def __repr__(self) -> str:
        return f"LikelihoodRatioGAN({self.name!r})"

    def check(self, **grid) -> ConstructionReport:
        """:func:`check_construction` of this game (and generator) without raising."""
        return check_construction(self.phi, self.psi, self.t_range, self.beta, self.alpha, **grid)

    def validate(self, **grid) -> ConstructionReport:
        """Like :meth:`check`, but raise ``ValueError`` listing every violated condition."""
        report = self.check(**grid)
        if report.problems:
            raise ValueError(f"{self!r} violates the likelihood-ratio construction: " + "; ".join(report.problems))
        return report

    def d_loss(self, t_real: Tensor, t_fake: Tensor) -> Tensor:
        """Discriminator loss (minimised): ``−(mean φ(t_real) + mean ψ(t_fake))``."""
        check_same_batch("t_real", t_real, "t_fake", t_fake)
        with torch.autocast(t_real.device.type, enabled=False):
            real, fake = wide(check_scores("t_real", t_real)), wide(check_scores("t_fake", t_fake))
            return -(self.phi(real).mean() + self.psi(fake).mean())

    def g_loss(self, t_fake: Tensor) -> Tensor:
        """Generator loss: ``mean β(t_fake)`` (decoupled) or ``mean ψ(t_fake)`` (saddle)."""
        with torch.autocast(t_fake.device.type, enabled=False):
            fake = wide(check_scores("t_fake", t_fake))
            return (self.beta or self.psi)(fake).mean()

    def ratio(self, t: Tensor) -> Tensor:
        """The likelihood ratio ``q/p = ω⁻¹(t) = −φ'(t)/ψ'(t)`` that output ``t`` stands for, ``(B,)``."""
        with torch.autocast(t.device.type, enabled=False):
            t = wide(check_scores("t", t).detach())
            return -_derivative(self.phi, t) / _derivative(self.psi, t)


def original_gan() -> LikelihoodRatioGAN:
    """Example 1: the original GAN with the fake labelled 1 (``t* = log(q/p)``)."""
    return LikelihoodRatioGAN(lambda t: -F.softplus(t), lambda t: LOG2 - F.softplus(-t), name="gan")


def original_gan_probability() -> LikelihoodRatioGAN:
    """Example 2: the same game on probabilities ``t ∈ (0, 1)``: ``φ = log(1 − t)``, ``ψ = log 2 + log t``."""
    return LikelihoodRatioGAN(lambda t: torch.log1p(-t), lambda t: LOG2 + torch.log(t), t_range=(1e-4, 1 - 1e-4),
                              name="gan_probability")


def exponential_gan() -> LikelihoodRatioGAN:
    """Example 3: ``max E_p[−eᵗ] + E_q[1 − e⁻ᵗ]``, ``ω(r) = ½ log r``, ``d(r) = r − 2√r`` (squared Hellinger − 1)."""
    return LikelihoodRatioGAN(lambda t: -torch.exp(t), lambda t: -torch.expm1(-t), name="exponential")


def kl_generator() -> LikelihoodRatioGAN:
    """Decoupled example A: the original GAN discriminator, generator ``min E_q t`` (``d_G = r log r``, KL(q||p))."""
    return LikelihoodRatioGAN(lambda t: -F.softplus(t), lambda t: LOG2 - F.softplus(-t), beta=lambda t: t,
                              name="gan_kl")


def nonsaturating() -> LikelihoodRatioGAN:
    """Decoupled example B: the original GAN discriminator, generator ``min E_q log(1 + eᵗ)`` (non-saturating)."""
    softplus = F.softplus
    return LikelihoodRatioGAN(lambda t: -F.softplus(t), lambda t: LOG2 - F.softplus(-t), beta=softplus, alpha=softplus,
                              name="gan_nonsat")


def least_squares(a: float = -1.0, b: float = 1.0) -> LikelihoodRatioGAN:
    """Decoupled example C (LSGAN): ``φ = −(t − a)²``, ``ψ = (b − a)²/4 − (t − b)²``,
    generator ``β = ((2t − a − b)/(b − a))²`` (= ``t²`` for a = −1, b = 1)."""
    if not b > a:
        raise ValueError(f"least_squares needs b > a; got a={a!r}, b={b!r}")
    shift = (b - a) ** 2 / 4

    def beta(t: Tensor) -> Tensor:
        return ((2 * t - a - b) / (b - a)).square()

    return LikelihoodRatioGAN(lambda t: -(t - a).square(), lambda t: shift - (t - b).square(), beta=beta, alpha=beta,
                              t_range=(a - 2 * (b - a), b + 2 * (b - a)), name="lsgan")


EXAMPLES: dict[str, Callable[[], LikelihoodRatioGAN]] = {
    "gan": original_gan,
    "gan_probability": original_gan_probability,
    "exponential": exponential_gan,
    "gan_kl": kl_generator,
    "gan_nonsat": nonsaturating,
    "lsgan": least_squares,
}

__all__ = ["ConstructionReport", "EXAMPLES", "LikelihoodRatioGAN", "check_construction", "exponential_gan",
           "kl_generator", "least_squares", "nonsaturating", "original_gan", "original_gan_probability"]
