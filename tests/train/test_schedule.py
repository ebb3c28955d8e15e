"""The learning-rate schedule: its formula, and one scheduler step per real optimizer step under
gradient accumulation (never per micro-batch)."""

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from genlab.train import Run, TrainConfig, build_optimizer, build_scheduler, lr_factor



def test_formula():
    assert [lr_factor(k, 4, 100) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(0, 0, 10) == 1.0 and lr_factor(10, 0, 10, "cosine") == 0.0
    assert lr_factor(5, 0, 10, "cosine") == pytest.approx(0.5) and lr_factor(5, 0, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(1, 4, 10, "cosine") == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi * 0.1)))
    with pytest.raises(ValueError, match="schedule='step'"):
        lr_factor(0, 0, 10, "step")


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_one_scheduler_step_per_optimizer_step_with_accumulation(tmp_path, fresh_accelerate, schedule):
    """grad_accum=4, warmup_steps=8: after optimizer step k the rate is lr * lr_factor(k). Stepping per
    micro-batch (the old behaviour) ends the warm-up after 2 optimizer steps instead of 8."""
    cfg = TrainConfig(output_dir=str(tmp_path), name="s", grad_accum=4, warmup_steps=8, max_steps=12, lr=0.1,
                      schedule=schedule, log_every=1, eval_every=0, ckpt_every=0)
    run = Run(cfg, tensorboard=False)
    acc = run.accelerator
    assert acc.gradient_accumulation_steps == 4
    model = torch.nn.Linear(3, 1)
    optimizer = build_optimizer("adamw", model, cfg.lr)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, cfg.max_steps, cfg.schedule)
    loader = DataLoader(TensorDataset(torch.randn(64, 3)), batch_size=2)
    model, optimizer, loader, scheduler = acc.prepare(model, optimizer, loader, scheduler)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * lr_factor(0, 8, 12, schedule))
    updates = 0
    for step, micro in run.steps(loader):
        for (x,) in micro:
            with acc.accumulate(model):
                run.optimizer_step(model(x).square().mean(), model, optimizer, scheduler)
        updates += 1
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * lr_factor(step, 8, 12, schedule)), step
        assert scheduler.scheduler.last_epoch == step
    assert updates == 12
    assert (tmp_path / "s" / "config.yaml").read_text().count("grad_accum: 4") == 1


def test_no_scheduler_step_on_micro_batches_or_skipped_fp16_steps():
    """fp16 needs a GPU, so the loss scaler's skip is stood in for by the flag Accelerate's optimizer exposes."""
    from types import SimpleNamespace

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = build_scheduler(optimizer, 4, 10)
    for sync, skipped, stepped in [(False, False, 0), (True, True, 0), (True, False, 1)]:
        run = SimpleNamespace(accelerator=SimpleNamespace(sync_gradients=sync))
        Run.step_scheduler(run, scheduler, SimpleNamespace(step_was_skipped=skipped))
        assert scheduler.last_epoch == stepped
