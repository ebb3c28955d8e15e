"""Evaluation: reconstruction metrics and codebook usage for tokenizers."""

from genlab.metrics.reconstruction import CodebookUsage, psnr, ssim

__all__ = ["CodebookUsage", "psnr", "ssim"]
