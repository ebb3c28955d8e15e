"""Gradient-penalty critics: WGAN-GP and the critic derived from ReFlow.

**WGAN-GP** (Gulrajani et al. 2017, arXiv 1704.00028, Eq. 3 / Algorithm 1):

    L_D = E[D(x̃)] − E[D(x)] + λ E[(‖∇D(x̂)‖ − 1)²],   x̂ = εx + (1 − ε)x̃,  ε ~ U[0, 1] per sample,

with ``λ = 10``, ``x`` real and ``x̃`` fake; the generator minimises ``−E[D(G(z))]``.

**The ReFlow-derived critic** (Su, kexue.fm 9668). With the fake ``x_0 = G(z)`` as the source and the
data ``x_1`` as the target of rectified flow, ``x_t = (1 − t)x_0 + t x_1``, the ReFlow loss
``½‖v(x_t) − (x_1 − x_0)‖²`` with a time-free gradient field ``v = ∇D`` becomes, dropping a v-free term
and using ``⟨∇D(x_t), x_1 − x_0⟩ = d D(x_t)/dt ≈ D(x_1) − D(x_0)``,

    L_D = E_{z, x_1, t ~ U[0,1]} [ ½‖∇_x D(x_t)‖² − D(x_1) + D(x_0) ]:

the WGAN-GP critic with a **zero-centred** penalty of weight ½ on the same per-sample interpolates, and
no time input. The generator takes one small ODE step from ``t = 0``: the proximal loss
``E‖G_θ(z) − sg[G_θτ(z) + ε∇D(G_θτ(z))]‖²`` (:func:`proximal_target`, :func:`proximal_loss`), whose
gradient at ``θ = θτ`` is ``2ε`` times that of ``−E[D(G_θ(z))]`` (the one-step loss, :meth:`g_loss`).

One class covers both (``penalty_center`` 1 with ``gp_weight`` 10, or 0 with ½): :func:`wgan_gp` and
:func:`reflow_critic`. The gradient is taken in the critic's precision and the penalty formed in float32
(squared norm summed in float32, eps inside the square root); under fp16 with a ``GradScaler`` the
gradient of the *scaled* output is taken and unscaled before the penalty, as in PyTorch's AMP
examples ("Gradient penalty"). Under bf16 (CPU or GPU) there is no scaler.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from genlab.gans.checks import check_same_batch, check_scores, wide

CriticFn = Callable[[Tensor], Tensor]
NORM_EPS = 1e-12  # inside the square root: ‖g‖ has a NaN double-backward at g = 0 (pytorch #2534)


def penalty_interpolates(real: Tensor, fake: Tensor, t: Tensor | None = None) -> Tensor:
    """Per-sample interpolates ``x_t = (1 − t) fake + t real`` with ``t ~ U[0, 1]`` of shape ``(B, 1, ...)``.

    The flow path of :func:`genlab.flows.interpolate` with the fake as source and the real as target,
    detached and in float32: the points where the gradient penalty is taken (data first, like every
    critic call here).

    ``real, fake (B, ...)`` of the same shape; ``t (B,)`` may be given (tests). Float32 even if the
    inputs are half precision, so the input gradient of the penalty is float32.
    """
    check_same_batch("real", real, "fake", fake)
    if t is None:
        t = torch.rand(real.shape[0], device=real.device)
    elif t.shape != (real.shape[0],):
        raise ValueError(f"t must have shape ({real.shape[0]},), one time per sample; got {tuple(t.shape)}")
    t = wide(t).view(-1, *([1] * (real.ndim - 1)))
    return (1 - t) * wide(fake.detach()) + t * wide(real.detach())


def _grad_of_scores(scores: Tensor, x: Tensor, scaler: torch.amp.GradScaler | None, create_graph: bool) -> Tensor:
    """``∇_x sum(scores)`` in float32; with an enabled fp16 ``scaler`` the scaled sum is differentiated
    and the result unscaled (PyTorch AMP examples, "Gradient penalty"), so small gradients do not
    underflow in fp16 and the penalty does not overflow."""
    out = scores.sum()
    scaled = scaler is not None and scaler.is_enabled()
    if scaled:
        out = scaler.scale(out)
    (grad,) = torch.autograd.grad(out, x, create_graph=create_graph)
    return wide(grad) / scaler.get_scale() if scaled else wide(grad)


def input_gradient(critic: CriticFn, x: Tensor, scaler: torch.amp.GradScaler | None = None,
                   create_graph: bool = True) -> tuple[Tensor, Tensor]:
    """``(D(x) (B,), ∇_x D(x) (B, ...) float32)``, differentiable w.r.t. the critic's parameters
    when ``create_graph``."""
    x = wide(x.detach()).requires_grad_(True)
    scores = check_scores("critic(x)", critic(x))
    return scores, _grad_of_scores(scores, x, scaler, create_graph)


class GradientPenaltyLoss:
    """Critic loss ``mean D(fake) − mean D(real) + gp_weight · mean penalty(∇D(x_t))`` (module docstring).

    Args:
        penalty_center: 1 for WGAN-GP's ``(‖g‖ − 1)²``, 0 for the zero-centred ``‖g‖²`` of the
            ReFlow-derived critic.
        gp_weight: λ (10 for WGAN-GP, ½ for the ReFlow critic, fixed by its derivation).
    """

    def __init__(self, penalty_center: float = 0.0, gp_weight: float = 0.5):
        if penalty_center not in (0, 1):
            raise ValueError(f"penalty_center={penalty_center!r} is not supported; expected 0 (zero-centred) or 1 (WGAN-GP)")
        if isinstance(gp_weight, bool) or not isinstance(gp_weight, (int, float)) or not gp_weight >= 0:
            raise ValueError(f"gp_weight={gp_weight!r} must be a number >= 0")
        self.penalty_center = float(penalty_center)
        self.gp_weight = float(gp_weight)

    def __repr__(self) -> str:
        return f"GradientPenaltyLoss(penalty_center={self.penalty_center:g}, gp_weight={self.gp_weight:g})"

    def penalty(self, grad: Tensor) -> Tensor:
        """Per-sample penalty ``(B,)`` of input gradients ``(B, ...)``, in float32."""
        sq = wide(grad).flatten(1).pow(2).sum(1)
        if self.penalty_center == 0:
            return sq  # no square root: smooth at g = 0
        return (torch.sqrt(sq + NORM_EPS) - self.penalty_center).square()

    def d_loss(self, critic: CriticFn, real: Tensor, fake: Tensor, t: Tensor | None = None,
               scaler: torch.amp.GradScaler | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Critic loss and detached statistics.

        Args:
            critic: ``(B, ...) -> (B,)`` or ``(B, 1)``; evaluated on ``[real, fake]`` and, separately, on
                the interpolates ``x_t``, so the double backward of the penalty spans ``B`` rows, not ``3B``.
            real, fake: ``(B, ...)`` batches of the same shape; ``fake`` is detached here.
            t: optional interpolation times ``(B,)``.
            scaler: the fp16 ``GradScaler`` (``accelerator.scaler``), if any.

        Returns:
            ``(loss, {"wasserstein": mean D(real) − mean D(fake), "gp", "grad_norm"})``.
        """
        x_t = penalty_interpolates(real, fake, t).requires_grad_(True)
        b = real.shape[0]
        scores = check_scores("critic output", critic(torch.cat([real.detach(), fake.detach().to(real.dtype)])), finite=False)
        d_real, d_fake = wide(scores[:b]), wide(scores[b:])
        d_t = check_scores("critic output on the interpolates", critic(x_t), finite=False)
        grad = _grad_of_scores(d_t, x_t, scaler, create_graph=True)
        sq_norm = wide(grad.detach()).flatten(1).pow(2).sum(1)
        penalty = self.penalty(grad)
        wasserstein = d_real.mean() - d_fake.mean()
        loss = -wasserstein + self.gp_weight * penalty.mean()
        if not torch.isfinite(loss.detach()):  # one host sync per step; name the culprit only on failure
            check_scores("critic output", scores)
            check_scores("critic output on the interpolates", d_t)
        stats = {"wasserstein": wasserstein.detach(), "gp": penalty.mean().detach(), "grad_norm": sq_norm.sqrt().mean()}
        return loss, stats

    @staticmethod
    def g_loss(scores_fake: Tensor) -> Tensor:
        """One-step generator loss ``−mean D(G(z))`` from the critic's scores ``(B,)`` on fakes."""
        return -wide(check_scores("scores_fake", scores_fake)).mean()


def wgan_gp(gp_weight: float = 10.0) -> GradientPenaltyLoss:
    """WGAN-GP: one-centred penalty ``λ(‖∇D(x̂)‖ − 1)²`` with ``λ = 10``."""
    return GradientPenaltyLoss(penalty_center=1, gp_weight=gp_weight)


def reflow_critic(gp_weight: float = 0.5) -> GradientPenaltyLoss:
    """The ReFlow-derived critic: zero-centred ``½‖∇D(x_t)‖²`` on the same interpolates."""
    return GradientPenaltyLoss(penalty_center=0, gp_weight=gp_weight)


def proximal_target(critic: CriticFn, x_old: Tensor, eps: float, scaler: torch.amp.GradScaler | None = None) -> Tensor:
    """``sg[x_old + ε ∇_x D(x_old)]``: the generator's samples moved one ODE step along ``∇D``.

    ``x_old (B, ...)`` are the samples of the frozen generator ``G_θτ(z)``; the target is computed once
    and reused by the K proximal steps (Su 9668).
    """
    if not eps > 0:
        raise ValueError(f"eps={eps!r} must be > 0 (the ODE step size)")
    _, grad = input_gradient(critic, x_old, scaler, create_graph=False)
    return (wide(x_old.detach()) + eps * grad).detach()


def proximal_loss(x: Tensor, target: Tensor) -> Tensor:
    """``mean over the batch of ‖x − target‖²`` summed over features (not ``mse_loss``, which divides
    by the feature count and would change the step size by that factor)."""
    check_same_batch("x", x, "target", target)
    return (wide(x) - wide(target)).flatten(1).pow(2).sum(1).mean()


__all__ = ["GradientPenaltyLoss", "NORM_EPS", "input_gradient", "penalty_interpolates", "proximal_loss", "proximal_target",
           "reflow_critic", "wgan_gp"]
