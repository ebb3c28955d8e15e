"""Train the VQ-VAE image tokenizer (encoder -> VectorQuantizer -> decoder) with Accelerate.

The VQ twin of ``train_fsq.py``: the same training loop, data, evaluation and run folder
(``genlab.train.tokenizer.train_tokenizer``), with the quantizer switched to ``vq`` and its options in
``quantizer_options`` (merged over ``VQ_DEFAULTS``, so one key can be overridden alone).

    python scripts/train_vqvae.py                                  # photos, 1024 codes, the default budget
    accelerate launch --multi_gpu --num_processes 2 scripts/train_vqvae.py   # two processes (CPU or GPU)
    python scripts/train_vqvae.py --config configs/vq/photos.yaml
    python scripts/train_vqvae.py --quantizer_options "{codebook_size: 4096}" --name vq_4096
    python scripts/train_vqvae.py --quantizer_options "{dead_code_threshold: 0}" --name vq_no_reset
    python scripts/train_vqvae.py --resume                         # continue runs/vqvae with its saved config

Writes the same ``runs/<name>/`` as ``train_fsq.py`` (results.json with held-out PSNR, SSIM, codebook
usage and perplexity; metrics.jsonl also logs the dead-code count during training).
"""

from __future__ import annotations

from genlab.train import parse_config
from genlab.train.tokenizer import VQ_DEFAULTS, VQVAETrainConfig, train_tokenizer


def main(argv: list[str] | None = None) -> dict:
    return train_tokenizer(parse_config(VQVAETrainConfig, argv, doc=__doc__, prog="train_vqvae.py"))


__all__ = ["VQ_DEFAULTS", "VQVAETrainConfig", "main"]

if __name__ == "__main__":
    main()
