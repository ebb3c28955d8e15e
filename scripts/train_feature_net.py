"""Train the digits feature network shipped as genlab/assets/digits_classifier.safetensors.

    python scripts/train_feature_net.py                       # about half a minute on 2 CPU cores
    python scripts/train_feature_net.py --resume              # continue a killed run
    python scripts/train_feature_net.py --out my_classifier.safetensors

Trains on the digits train split (with random shifts of up to 2 pixels and small rotations),
reports the held-out test accuracy after every epoch, and writes the weights with their metadata
to ``--out`` (the shipped asset by default) and to the run folder. Deterministic for a given seed:
the default run reproduces the shipped file bit for bit. The data order and the augmentation draw
from one generator whose state is checkpointed with the model, so a resumed run, or one launched
on several processes (each sees the same batches; the averaged gradient equals one process's),
ends with the same weights.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlab.data import load_digits_tensors  # noqa: E402
from genlab.metrics.features import DEFAULT_WEIGHTS, INPUT_SIZE, WEIGHTS_KIND, DigitsClassifier  # noqa: E402
from genlab.train import Run, TrainConfig, check_finite_loss, parse_config, save_weights  # noqa: E402


@dataclass
class FeatureNetConfig(TrainConfig):
    name: str = "digits_classifier"
    epochs: int = 40  # max_steps is derived: epochs x (1438 // batch_size) batches
    batch_size: int = 64
    lr: float = 2e-3  # OneCycle peak
    weight_decay: float = 1e-4
    log_every: int = 22
    eval_every: int = 0
    ckpt_every: int = 110  # steps (22 per epoch)
    out: str = str(DEFAULT_WEIGHTS)  # where the weights go; the shipped asset by default

    def validate(self) -> None:
        super().validate()
        if self.epochs < 1:
            raise ValueError(f"config key 'epochs'={self.epochs!r} must be >= 1")
        if self.optimizer != "adamw" or self.grad_accum != 1:
            raise ValueError("the feature network trains with --optimizer adamw and --grad_accum 1 only")


class DataOrder:
    """The generator behind the shuffles and the augmentation, and the current epoch's order;
    checkpointed so that a resumed run draws exactly what an uninterrupted one would."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None

    def state_dict(self) -> dict:
        return {"g": self.g.get_state(), "perm": self.perm}

    def load_state_dict(self, state: dict) -> None:
        self.g.set_state(state["g"])
        self.perm = state["perm"]


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


@torch.no_grad()
def held_out_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` (N, 1, H, W) with labels ``y`` (N,)."""
    model.eval()
    device = next(model.parameters()).device
    return (model(x.to(device)).argmax(1).cpu() == y).float().mean().item()


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(FeatureNetConfig, argv)
    x, y = load_digits_tensors("train", INPUT_SIZE)
    x_test, y_test = load_digits_tensors("test", INPUT_SIZE)
    per_epoch = len(x) // cfg.batch_size
    cfg.max_steps = cfg.epochs * per_epoch
    run = Run(cfg)  # seeds torch with cfg.seed, so the initialisation below is the seed's
    acc = run.accelerator
    model = DigitsClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.max_steps)
    model, opt, sched = acc.prepare(model, opt, sched)
    order = DataOrder(cfg.seed)
    acc.register_for_checkpointing(order)
    start = run.maybe_resume()

    accuracy = float("nan")
    for step in range(start + 1, cfg.max_steps + 1):
        epoch, i = divmod(step - 1, per_epoch)
        if i == 0:
            order.perm = torch.randperm(len(x), generator=order.g)
        model.train()
        idx = order.perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        loss = F.cross_entropy(model(augment(x[idx], order.g).to(acc.device)), y[idx].to(acc.device), label_smoothing=0.05)
        check_finite_loss(step, loss=loss)
        opt.zero_grad()
        acc.backward(loss)
        opt.step()
        sched.step()
        if i == per_epoch - 1:  # end of an epoch: held-out accuracy
            accuracy = held_out_accuracy(model, x_test, y_test)
            run.log(step, {"loss": loss.detach(), "test_accuracy": accuracy})
            run.print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy:.4f}")
        run.maybe_checkpoint(step)

    if start >= cfg.max_steps:  # resumed a finished run: score what was loaded
        accuracy = held_out_accuracy(model, x_test, y_test)
    meta = {"test_accuracy": round(accuracy, 4), "test_images": len(y_test), "input_size": INPUT_SIZE,
            "train": "digits train split (1438), python scripts/train_feature_net.py", "seed": cfg.seed}
    if run.is_main:
        net = acc.unwrap_model(model)
        save_weights(net, run.path("weights", "digits_classifier.safetensors"), WEIGHTS_KIND, meta)
        save_weights(net, cfg.out, WEIGHTS_KIND, meta)
        run.write_results({**meta, "steps": cfg.max_steps, "out": cfg.out, "processes": acc.num_processes})
    run.finish()
    return meta


if __name__ == "__main__":
    main()
