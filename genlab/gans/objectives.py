"""Every GAN objective behind one interface, chosen by name (what ``scripts/train_gan.py`` trains).

| name | critic | generator |
|---|---|---|
| ``hinge`` | ``½(mean relu(1 − D(x)) + mean relu(1 + D(G(z))))`` | ``−D(G(z))`` |
| ``wgan_gp`` | WGAN-GP, ``10(‖∇D‖ − 1)²`` | ``−D(G(z))`` (or proximal) |
| ``reflow`` | ReFlow-derived, ``½‖∇D‖²`` | ``−D(G(z))`` (or proximal) |
| ``fgan_<key>`` | f-GAN bound of :data:`~genlab.gans.fgan.TABLE` | ``nonsat`` or ``saddle`` |
| ``lr_<example>`` | likelihood-ratio game of :data:`~genlab.gans.likelihood_ratio.EXAMPLES` | ψ or the decoupled β |

    obj = build_objective("fgan_kl", g_mode="saddle")
    loss_d, stats = obj.critic_loss(critic, real, fake)      # fake is detached inside
    loss_g, stats = obj.generator_loss(critic, G(z))

Critics return one score per sample, ``(B,)`` or ``(B, 1)``, or a map of patch logits ``(B, 1, h, w)``
(:class:`~genlab.gans.patch.PatchDiscriminator`): f-GAN, hinge and likelihood-ratio losses then treat
each patch logit as one score, as taming's VQGAN losses do (mean over patches), and the penalty
critics score an image by the mean of its patch logits (the gradient penalty is per image).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from genlab.gans.checks import check_same_batch, check_scores, wide
from genlab.gans.fgan import DIVERGENCES, G_MODES, FDivergence
from genlab.gans.likelihood_ratio import EXAMPLES, LikelihoodRatioGAN
from genlab.gans.wgan import GradientPenaltyLoss, reflow_critic, wgan_gp

LR_TRAINABLE = [k for k in EXAMPLES if k != "gan_probability"]  # gan_probability needs outputs in (0, 1)
OBJECTIVES = ["hinge", "wgan_gp", "reflow", *[f"fgan_{k}" for k in DIVERGENCES], *[f"lr_{k}" for k in LR_TRAINABLE]]


class Objective(Protocol):
    name: str

    def critic_loss(self, critic, real: Tensor, fake: Tensor, scaler=None) -> tuple[Tensor, dict[str, Tensor]]: ...

    def generator_loss(self, critic, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]: ...


def patch_scores(scores: Tensor) -> Tensor:
    """A patch-logit map ``(B, 1, h, w)`` as ``B·h·w`` scores; ``(B,)`` and ``(B, 1)`` pass unchanged."""
    return scores.reshape(-1) if isinstance(scores, Tensor) and scores.ndim > 2 else scores


def per_sample(critic):
    """``critic`` scoring each image by the mean of its patch logits, ``(B,)`` (penalty critics)."""
    def score(x: Tensor) -> Tensor:
        s = critic(x)
        return s.flatten(1).mean(1) if isinstance(s, Tensor) and s.ndim > 2 else s
    return score


def _scores(critic, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """One critic forward on ``[real, fake]`` (one DistributedDataParallel forward per step)."""
    check_same_batch("real", real, "fake", fake)
    scores = critic(torch.cat([real, fake.detach().to(real.dtype)]))
    return patch_scores(scores[: len(real)]), patch_scores(scores[len(real):])


class HingeObjective:
    """Hinge loss (Lim & Ye 2017, arXiv 1705.02894; SN-GAN; taming's VQGAN default):
    critic ``½(mean relu(1 − D(x)) + mean relu(1 + D(x̃)))``, generator ``−mean D(x̃)``."""

    name = "hinge"

    def critic_loss(self, critic, real: Tensor, fake: Tensor, scaler=None) -> tuple[Tensor, dict[str, Tensor]]:
        v_real, v_fake = _scores(critic, real, fake)
        v_real, v_fake = wide(check_scores("critic(real)", v_real)), wide(check_scores("critic(fake)", v_fake))
        loss = 0.5 * (torch.relu(1 - v_real).mean() + torch.relu(1 + v_fake).mean())
        stats = {"acc_real": (v_real > 0).float().mean().detach(), "acc_fake": (v_fake <= 0).float().mean().detach()}
        return loss, stats

    def generator_loss(self, critic, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return -wide(check_scores("critic(fake)", patch_scores(critic(fake)))).mean(), {}


class FGANObjective:
    """f-GAN: the critic maximises the variational bound, the generator plays ``g_mode``."""

    def __init__(self, key: str, g_mode: str = "nonsat", logit_clip: float | None = None):
        if g_mode not in G_MODES:
            raise ValueError(f"g_mode={g_mode!r} is not supported; expected one of {G_MODES}")
        self.divergence = FDivergence(key, logit_clip)
        self.g_mode = g_mode
        self.name = f"fgan_{self.divergence.key}"

    def critic_loss(self, critic, real: Tensor, fake: Tensor, scaler=None) -> tuple[Tensor, dict[str, Tensor]]:
        v_real, v_fake = _scores(critic, real, fake)
        loss = self.divergence.d_loss(v_real, v_fake)
        return loss, {"bound": -loss.detach(), **self.divergence.accuracy(v_real, v_fake)}

    def generator_loss(self, critic, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.divergence.g_loss(patch_scores(critic(fake)), self.g_mode), {}


class LikelihoodRatioObjective:
    """A likelihood-ratio game; logs the ratio ``q/p`` it reads on real and fake batches."""

    def __init__(self, example: str):
        if example not in LR_TRAINABLE:
            raise ValueError(f"likelihood-ratio example {example!r} is not trainable here; expected one of {LR_TRAINABLE}")
        self.game: LikelihoodRatioGAN = EXAMPLES[example]()
        self.name = f"lr_{example}"

    def critic_loss(self, critic, real: Tensor, fake: Tensor, scaler=None) -> tuple[Tensor, dict[str, Tensor]]:
        t_real, t_fake = _scores(critic, real, fake)
        loss = self.game.d_loss(t_real, t_fake)
        stats = {"ratio_real": self.game.ratio(t_real).mean(), "ratio_fake": self.game.ratio(t_fake).mean()}
        return loss, stats

    def generator_loss(self, critic, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.game.g_loss(patch_scores(critic(fake))), {}


class PenaltyObjective:
    """WGAN-GP or the ReFlow-derived critic; the one-step generator loss ``−D(G(z))``."""

    def __init__(self, critic: GradientPenaltyLoss, name: str):
        self.critic, self.name = critic, name

    def critic_loss(self, critic, real: Tensor, fake: Tensor, scaler=None,
                    generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``generator`` (on the CPU) draws the interpolation times instead of the global RNG."""
        t = None if generator is None else torch.rand(len(real), generator=generator).to(real.device)
        return self.critic.d_loss(per_sample(critic), real, fake, t=t, scaler=scaler)

    def generator_loss(self, critic, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.critic.g_loss(per_sample(critic)(fake)), {}


def build_objective(name: str, g_mode: str = "nonsat", gp_weight: float | None = None,
                    logit_clip: float | None = None) -> Objective:
    """The objective called ``name`` (one of :data:`OBJECTIVES`).

    ``g_mode`` applies to f-GANs, ``gp_weight`` (default: 10 for ``wgan_gp``, ½ for ``reflow``) to the
    penalty critics, ``logit_clip`` to f-GANs; passing one to an objective that ignores it is an error.
    """
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {OBJECTIVES}")
    penalty = name in ("wgan_gp", "reflow")
    if gp_weight is not None and not penalty:
        raise ValueError(f"gp_weight={gp_weight!r} only applies to 'wgan_gp' and 'reflow', not {name!r}")
    if logit_clip is not None and not name.startswith("fgan_"):
        raise ValueError(f"logit_clip={logit_clip!r} only applies to f-GAN objectives, not {name!r}")
    if g_mode != "nonsat" and not name.startswith("fgan_"):
        raise ValueError(f"g_mode={g_mode!r} only applies to f-GAN objectives, not {name!r}")
    if name == "hinge":
        return HingeObjective()
    if name == "wgan_gp":
        return PenaltyObjective(wgan_gp(*(() if gp_weight is None else (gp_weight,))), name)
    if name == "reflow":
        return PenaltyObjective(reflow_critic(*(() if gp_weight is None else (gp_weight,))), name)
    if name.startswith("fgan_"):
        return FGANObjective(name[len("fgan_"):], g_mode, logit_clip)
    return LikelihoodRatioObjective(name[len("lr_"):])


__all__ = ["FGANObjective", "HingeObjective", "LR_TRAINABLE", "LikelihoodRatioObjective", "OBJECTIVES", "Objective", "PenaltyObjective",
           "build_objective", "patch_scores", "per_sample"]
