"""Test-set evaluation of an image tokenizer: PSNR, SSIM, the high-frequency ratio (sharpness), codebook
usage and perplexity; on digits also rFD-digits-cnn and the classifier's accuracy on reconstructions."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from genlab.metrics.reconstruction import CodebookUsage
from genlab.metrics.sharpness import high_frequency_energy


@torch.no_grad()
def evaluate_tokenizer(model, batches: Iterable, gather: Callable[[Tensor], Tensor] = lambda t: t,
                       codebook_size: int | None = None, digits: bool = False) -> dict[str, float]:
    """Mean per-image PSNR and SSIM, the high-frequency ratio, and codebook usage / perplexity over the whole set.

    Args:
        model: an :class:`~genlab.tokenizers.ImageTokenizer` (possibly wrapped by Accelerate).
        batches: ``(images, labels)`` batches; under several processes each sees its shard.
        gather: collects per-process tensors (``accelerator.gather_for_metrics``) so every process
            computes the same numbers over the whole set.
        codebook_size: defaults to ``model.codebook_size``.
        digits: the set is the ``digits`` data (labels in the batches): adds the digits-classifier scores
            (:func:`~genlab.metrics.digits.digits_reconstruction_scores`).

    Returns:
        ``{"psnr", "ssim", "hf_ratio", "usage", "perplexity", "codes_used", "images"}`` (+ ``rfd_digits_cnn``,
        ``rfd_floor``, ``accuracy``, ``accuracy_originals`` with ``digits``). ``hf_ratio`` is
        :func:`~genlab.metrics.sharpness.high_frequency_ratio` over the set (1.0 = as sharp as the data).
    """
    was_training = model.training
    model.eval()
    psnrs, ssims, usage, hf_rec, hf_orig, kept = [], [], None, [], [], []
    for images, labels in batches:
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
        hf_rec.append(gather(high_frequency_energy(x)))
        hf_orig.append(gather(high_frequency_energy(y)))
        if digits:
            kept.append((gather(x * 2 - 1).cpu(), gather(images.float().contiguous()).cpu(), gather(labels.contiguous()).cpu()))
    model.train(was_training)
    stats = usage.compute()
    p, s = torch.cat(psnrs), torch.cat(ssims)
    metrics = {"psnr": p.mean().item(), "ssim": s.mean().item(),
               "hf_ratio": (torch.cat(hf_rec).sum() / torch.cat(hf_orig).sum()).item(), "usage": stats["usage"].item(),
               "perplexity": stats["perplexity"].item(), "codes_used": int(stats["used"]), "images": len(p)}
    if digits:
        from genlab.metrics.digits import digits_reconstruction_scores

        rec, orig, lab = (torch.cat(t) for t in zip(*kept))
        metrics.update(digits_reconstruction_scores(rec, orig, lab))
    return metrics
