"""Train the VQ-VAE image tokenizer (encoder -> VectorQuantizer -> decoder) with Accelerate.

The VQ twin of ``train_fsq.py``: the same training loop, data, evaluation and run folder
(``train_fsq.main``), with the quantizer switched to ``vq`` and its options in ``quantizer_options``
(merged over the defaults below, so one key can be overridden alone).

    python scripts/train_vqvae.py                                  # photos, 1024 codes, the default budget
    accelerate launch --multi_gpu --num_processes 2 scripts/train_vqvae.py   # two processes (CPU or GPU)
    python scripts/train_vqvae.py --config configs/vq/photos.yaml
    python scripts/train_vqvae.py --quantizer_options "{codebook_size: 4096}" --name vq_4096
    python scripts/train_vqvae.py --quantizer_options "{dead_code_threshold: 0}" --name vq_no_reset
    python scripts/train_vqvae.py --resume                         # continue runs/vqvae

Writes the same ``runs/<name>/`` as ``train_fsq.py`` (results.json with test PSNR, SSIM, codebook
usage and perplexity; metrics.jsonl also logs the dead-code count during training).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.train_fsq import TokenizerTrainConfig, main  # noqa: E402

# The VQ of the default run: 8-channel latents, EMA codebook (decay 0.99, Laplace smoothing),
# beta = 0.25, k-means init on the first batch, and dead-code reset below 0.1 vectors per batch.
VQ_DEFAULTS = {
    "dim": 8,
    "codebook_size": 1024,
    "codebook_update": "ema",
    "decay": 0.99,
    "commitment_weight": 0.25,
    "kmeans_init": True,
    "dead_code_threshold": 0.1,
}


@dataclass
class VQVAETrainConfig(TokenizerTrainConfig):
    """``train_fsq.py``'s config with ``quantizer: vq``; ``quantizer_options`` override ``VQ_DEFAULTS``."""

    name: str = "vqvae"
    quantizer: str = "vq"
    quantizer_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.quantizer_options = {**VQ_DEFAULTS, **self.quantizer_options}


if __name__ == "__main__":
    main(config_cls=VQVAETrainConfig)
