"""LeCam regulariser for the critic (Tseng et al. 2021, "Regularizing Generative Adversarial Networks
under Limited Data", arXiv 2104.03310, Eq. 3 and the authors' code):

    R_LC = E_x[relu(D(x) − α_F)²] + E_x̃[relu(α_R − D(x̃))²],

with ``α_R``, ``α_F`` exponential moving averages (decay 0.99) of the critic's mean output on real and
fake batches. It keeps the critic's outputs on the two sets from drifting apart, which bounds the
LeCam divergence the game then minimises; the authors weight it 0.3 (BigGAN, CIFAR) to 0.01.

The averages are buffers, so ``state_dict`` carries them into checkpoints (register the module with
``accelerator.register_for_checkpointing``).

    lecam = LeCam()
    reg = lecam(d_real, d_fake)       # scores (N,), with gradient; updates the averages (training mode)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.gans.checks import wide


class LeCam(nn.Module):
    """LeCam regulariser with moving anchors ``α_R`` (``ema_real``) and ``α_F`` (``ema_fake``).

    Args:
        decay: EMA decay of the anchors, in ``[0, 1)`` (the paper: 0.99).
    """

    def __init__(self, decay: float = 0.99):
        super().__init__()
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise ValueError(f"decay={decay!r} must be a number in [0, 1)")
        self.decay = float(decay)
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    def forward(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """The regulariser (float32 scalar) for critic scores on real ``(N,)`` and fake ``(M,)`` inputs;
        in training mode the anchors first move towards this batch's means (the authors' order)."""
        d_real, d_fake = wide(d_real.reshape(-1)), wide(d_fake.reshape(-1))
        if self.training:
            with torch.no_grad():
                self.ema_real.lerp_(d_real.mean().to(self.ema_real.dtype), 1 - self.decay)
                self.ema_fake.lerp_(d_fake.mean().to(self.ema_fake.dtype), 1 - self.decay)
        return (torch.relu(d_real - self.ema_fake).square().mean()
                + torch.relu(self.ema_real - d_fake).square().mean())


__all__ = ["LeCam"]
