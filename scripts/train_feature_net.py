"""Train the digits feature network shipped as assets/digits_classifier.safetensors.

    python scripts/train_feature_net.py            # about a minute on 2 CPU cores

Trains on the digits train split (with random shifts of up to 2 pixels and small rotations),
reports the held-out test accuracy, and writes the weights with their metadata. Deterministic
for a given seed on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlab.data import load_digits_tensors  # noqa: E402
from genlab.metrics.features import DEFAULT_WEIGHTS, INPUT_SIZE, WEIGHTS_KIND, DigitsClassifier  # noqa: E402
from genlab.train.io import save_weights  # noqa: E402


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random affine jitter: rotation up to 10 degrees, shifts up to 2 pixels, scale 0.9-1.1."""
    b = len(x)
    angle = (torch.rand(b, generator=g) * 2 - 1) * torch.pi / 18
    scale = 0.9 + 0.2 * torch.rand(b, generator=g)
    shift = (torch.rand(b, 2, generator=g) * 2 - 1) * (2 / INPUT_SIZE * 2)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    x, y = load_digits_tensors("train", INPUT_SIZE)
    x_test, y_test = load_digits_tensors("test", INPUT_SIZE)
    model = DigitsClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = args.epochs * (len(x) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // 64):
            idx = perm[i * 64:(i + 1) * 64]
            loss = F.cross_entropy(model(augment(x[idx], g)), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(x_test).argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {acc:.4f}", flush=True)
    meta = {"test_accuracy": round(acc, 4), "test_images": len(y_test), "input_size": INPUT_SIZE,
            "train": "digits train split (1438), python scripts/train_feature_net.py", "seed": args.seed}
    save_weights(model, args.out, WEIGHTS_KIND, meta)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
