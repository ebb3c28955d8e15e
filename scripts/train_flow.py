"""Train a rectified flow (flow matching, Liu et al. 2022) with Accelerate: toy2d points or images.

    python scripts/train_flow.py                                    # class-conditional flow on digits, ~10 min on 2 cores
    python scripts/train_flow.py --config configs/flows/toy2d.yaml  # 1-rectified flow, 8 gaussians from N(0, I)
    python scripts/train_flow.py --net dit --name flow_digits_dit   # the RoPE-2D DiT instead of the U-Net
    accelerate launch --multi_gpu --num_processes 2 scripts/train_flow.py
    python scripts/train_flow.py --resume                           # continue runs/flow_digits with its saved config
    python scripts/train_flow.py --dataset folder --data_root my_images --image_size 32 --class_conditional false --name mine
    python scripts/reflow.py reflow ...                             # 2-rectified flow / distillation (the same loop)

Each step draws fresh source noise ``x_0 ~ N(0, I)`` and per-example times (``uniform``,
``logit_normal`` or ``discrete`` for k-step distillation) and regresses ``v(x_t, t)`` on
``x_1 - x_0``. With ``--couplings DIR`` it trains on the fixed pairs ``(z_0, z_1)`` of a coupling
folder instead (reflow; pairs are shuffled together, never re-paired). Class-conditional runs drop
labels to the null class with probability ``p_uncond`` (classifier-free guidance). An EMA of the
weights is kept, checkpointed and used for evaluation.

Writes ``runs/<name>/``: config.yaml, metrics.jsonl, TensorBoard logs (tb/), checkpoints (model,
optimizer, EMA, RNG), weights/flow.safetensors and weights/flow_ema.safetensors, samples/
(image grids with one row per class, or scatter plots for toy2d) and results.json with the scores
of every evaluation solver and its measured NFE.
"""

from __future__ import annotations

from genlab.train import parse_config
from genlab.train.flow import FlowTrainConfig, train_flow


def main(argv: list[str] | None = None) -> dict:
    return train_flow(parse_config(FlowTrainConfig, argv, doc=__doc__, prog="train_flow.py"))


__all__ = ["FlowTrainConfig", "main"]

if __name__ == "__main__":
    main()
