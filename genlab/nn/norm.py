"""RMSNorm with its statistics in float32 (Zhang & Sennrich 2019, Eq. 4)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RMSNorm(nn.Module):
    """``y = x / sqrt(mean(x^2) + eps) * g`` over the last axis; ``(..., D) -> (..., D)``.

    The mean of squares runs in float32 even under bf16 autocast (a bf16 sum of squares loses
    the small components), and the result is cast back to the input's dtype. ``gain=False``
    gives the gainless RMSNorm of GAU-alpha / RoFormerV2.
    """

    param_kinds = {"weight": "gain"}  # Tiger's per-parameter rule (genlab.optim.param_groups)

    def __init__(self, dim: int, eps: float = 1e-6, gain: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if gain else None

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            y = (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        return y * self.weight.to(x.dtype) if self.weight is not None else y


__all__ = ["RMSNorm"]
