"""Reconstruction metrics for image tokenizers: PSNR, SSIM and codebook usage / perplexity.

Images are ``(B, C, H, W)`` in ``[-1, 1]``; PSNR and SSIM are computed on ``[0, 1]`` (data range
1) with torchmetrics. Codebook usage counts codes over a whole evaluation set, never per batch
(per-batch usage depends on the batch size), and sums the counts across processes.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def psnr(reconstruction: Tensor, target: Tensor) -> Tensor:
    """Mean PSNR in dB over the batch (each image its own MSE), images in ``[-1, 1]``."""
    x, y = (reconstruction.float().clamp(-1, 1) + 1) / 2, (target.float() + 1) / 2
    return peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3)).mean()


def ssim(reconstruction: Tensor, target: Tensor) -> Tensor:
    """Mean SSIM (gaussian window 11, sigma 1.5; Wang et al. 2004) of images in ``[-1, 1]``."""
    x, y = (reconstruction.float().clamp(-1, 1) + 1) / 2, (target.float() + 1) / 2
    return structural_similarity_index_measure(x, y, data_range=1.0)


class CodebookUsage(Metric):
    """Fraction of codes used and perplexity ``exp(H(p))`` over everything passed to ``update``.

    Args:
        codebook_size: number of codes ``K``.

    ``compute()`` returns ``{"usage": used / K, "perplexity": exp(-sum p log p), "used": count}``
    with ``p`` the empirical code frequencies (``0 log 0 = 0``). Counts are summed over
    processes (torchmetrics ``dist_reduce_fx="sum"``).
    """

    full_state_update = False

    def __init__(self, codebook_size: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(codebook_size, bool) or not isinstance(codebook_size, int) or codebook_size < 1:
            raise ValueError(f"codebook_size={codebook_size!r} must be a positive integer")
        self.codebook_size = codebook_size
        self.add_state("counts", default=torch.zeros(codebook_size, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, indices: Tensor) -> None:
        indices = indices.detach().reshape(-1).long()
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.codebook_size):
            raise ValueError(f"indices out of range [0, {self.codebook_size}): min {indices.min().item()}, max {indices.max().item()}")
        self.counts += torch.bincount(indices, minlength=self.codebook_size)

    def compute(self) -> dict[str, Tensor]:
        counts = self.counts.double()
        total = counts.sum().clamp_min(1)
        p = counts / total
        entropy = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum()
        used = (self.counts > 0).sum()
        return {"usage": used.double() / self.codebook_size, "perplexity": entropy.exp(), "used": used}
