"""Test-set evaluation of an image tokenizer: PSNR, SSIM, codebook usage and perplexity."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from genlab.metrics.reconstruction import CodebookUsage


@torch.no_grad()
def evaluate_tokenizer(model, batches: Iterable, gather: Callable[[Tensor], Tensor] = lambda t: t,
                       codebook_size: int | None = None) -> dict[str, float]:
    """Mean per-image PSNR and SSIM, and codebook usage / perplexity over the whole set.

    Args:
        model: an :class:`~genlab.tokenizers.ImageTokenizer` (possibly wrapped by Accelerate).
        batches: ``(images, labels)`` batches; under several processes each sees its shard.
        gather: collects per-process tensors (``accelerator.gather_for_metrics``) so every process
            computes the same numbers over the whole set.
        codebook_size: defaults to ``model.codebook_size``.

    Returns:
        ``{"psnr", "ssim", "usage", "perplexity", "codes_used", "images"}``.
    """
    was_training = model.training
    model.eval()
    psnrs, ssims, usage = [], [], None
    for images, _ in batches:
        out = model(images)
        x = (out.reconstruction.float().clamp(-1, 1) + 1) / 2
        y = (images.float() + 1) / 2
        p = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
        s = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
        idx = gather(out.indices.contiguous())
        if usage is None:
            k = codebook_size or getattr(model, "codebook_size", None) or model.module.codebook_size
            usage = CodebookUsage(k, sync_on_compute=False).to(idx.device)
        usage.update(idx)
        psnrs.append(gather(p))
        ssims.append(gather(s))
    model.train(was_training)
    stats = usage.compute()
    p, s = torch.cat(psnrs), torch.cat(ssims)
    return {"psnr": p.mean().item(), "ssim": s.mean().item(), "usage": stats["usage"].item(),
            "perplexity": stats["perplexity"].item(), "codes_used": int(stats["used"]), "images": len(p)}
