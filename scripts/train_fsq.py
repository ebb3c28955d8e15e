"""Train the FSQ image tokenizer (encoder -> FSQ -> decoder) with Accelerate.

    python scripts/train_fsq.py                                   # photos, levels [8,5,5,5], ~5 min on 2 cores
    accelerate launch scripts/train_fsq.py                        # same, through Accelerate
    accelerate launch --multi_gpu --num_processes 2 scripts/train_fsq.py   # two processes (CPU or GPU)
    accelerate launch --mixed_precision bf16 scripts/train_fsq.py          # the launcher's precision applies
    python scripts/train_fsq.py --config configs/fsq/photos_long.yaml
    python scripts/train_fsq.py --max_steps 100 --name quick --mixed_precision bf16
    python scripts/train_fsq.py --dataset folder --data_root my_images --image_size 32 --name mine
    python scripts/train_fsq.py --resume                          # continue runs/fsq with its saved config
    python scripts/train_fsq.py --resume runs/quick --max_steps 200   # continue runs/quick, train longer
    python scripts/train_fsq.py --config configs/fsq/photos64_gan.yaml   # VQGAN-style: L2 + PatchGAN (hinge), 64 x 64

Writes ``runs/<name>/``: config.yaml, metrics.jsonl, TensorBoard logs (tb/), checkpoints,
weights/tokenizer.safetensors, samples/reconstructions_*.png (originals on odd rows,
reconstructions below them) and results.json with the held-out PSNR, SSIM, high-frequency ratio,
codebook usage and perplexity (on digits also rFD-digits-cnn and the classifier's accuracy). The loop is ``genlab.train.tokenizer.train_tokenizer``.
"""

from __future__ import annotations

from genlab.train import parse_config
from genlab.train.tokenizer import TokenizerTrainConfig, train_tokenizer


def main(argv: list[str] | None = None) -> dict:
    return train_tokenizer(parse_config(TokenizerTrainConfig, argv, doc=__doc__, prog="train_fsq.py"))


__all__ = ["TokenizerTrainConfig", "main"]

if __name__ == "__main__":
    main()
