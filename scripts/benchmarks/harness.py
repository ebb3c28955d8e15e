"""genlab's training harness (``Run``) against a bare PyTorch loop on train_fsq's default setting.

Both loops train their own copy of the same model (``train_fsq.py``'s defaults: the conv FSQ
tokenizer, 32 px, 32 channels, batch 32, AdamW 2e-3 with warm-up, gradient clipping at 1.0) on
the same in-memory image tensors. genlab's loop is the one ``scripts/train_fsq.py`` runs:
``Run.steps`` (progress bar, epoch cycling), ``accelerator.accumulate``, ``check_finite_loss``,
``Run.optimizer_step`` (Accelerate's backward, clipping, prepared optimizer and scheduler) and
``Run.log`` every ``log_every`` steps (metrics.jsonl and TensorBoard). The bare loop is what a
user would write by hand: ``DataLoader`` -> forward -> backward -> ``clip_grad_norm_`` -> step.
The two alternate in blocks of steps within one process; the table gives steps per second.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from genlab.tokenizers import build_tokenizer
from genlab.train import Run, build_optimizer, build_scheduler, check_finite_loss
from scripts.benchmarks.timing import sync
from genlab.train.tokenizer import TokenizerTrainConfig

# train_fsq's defaults, then a model 10x smaller where the harness's fixed cost per step shows more,
# logging every step.
CASES = [{}, {"image_size": 16, "channels": 16, "batch_size": 16, "log_every": 1}]
IMAGES = 512  # in-memory training images (the photos dataset's crops are tensors in memory too)


def config(output_dir: str, device: torch.device, **overrides) -> TokenizerTrainConfig:
    cfg = TokenizerTrainConfig(output_dir=output_dir, name="harness", max_steps=10**6, eval_every=0, ckpt_every=0,
                               cpu_threads=torch.get_num_threads(), **overrides)
    cfg.validate()
    return cfg


def data(cfg: TokenizerTrainConfig) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(IMAGES, cfg.image_channels, cfg.image_size, cfg.image_size, generator=g) * 2 - 1
    return TensorDataset(images, torch.zeros(IMAGES, dtype=torch.long))


def genlab_loop(cfg: TokenizerTrainConfig, dataset: TensorDataset):
    """An endless generator of train_fsq's steps through ``Run`` (yields after each optimizer step)."""
    run = Run(cfg, tensorboard=True)
    acc = run.accelerator
    torch.manual_seed(0)
    model = build_tokenizer(cfg)
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, cfg.max_steps, cfg.schedule)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    model, optimizer, loader, scheduler = acc.prepare(model, optimizer, loader, scheduler)
    quantizer = acc.unwrap_model(model).quantizer
    for step, micro_batches in run.steps(loader, 0):
        for images, _ in micro_batches:
            with acc.accumulate(model):
                out = model(images)
                check_finite_loss(step, **out.losses)
                run.optimizer_step(out.loss, model, optimizer, scheduler, cfg.grad_clip)
        if step % cfg.log_every == 0:
            losses = {k: acc.reduce(v.detach(), "mean") for k, v in out.losses.items()}
            stats = {"dead_codes": quantizer.dead_codes} if hasattr(quantizer, "dead_codes") else {}
            run.log(step, {"loss": out.loss.detach(), **losses, "lr": scheduler.get_last_lr()[0], **stats})
        yield step


def bare_loop(cfg: TokenizerTrainConfig, dataset: TensorDataset, device: torch.device):
    """The same training written by hand: no Accelerate, no checks, no logging."""
    torch.manual_seed(0)
    model = build_tokenizer(cfg).to(device)
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)  # the same AdamW (foreach)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, cfg.max_steps, cfg.schedule)
    g = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=g)
    step = 0
    for images, _ in itertools.chain.from_iterable(itertools.repeat(loader)):
        loss = model(images.to(device, non_blocking=True)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        yield step


def interleave(loops: dict, device: torch.device, block: int, rounds: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each loop over ``rounds`` alternating blocks of ``block`` steps."""
    for it in loops.values():
        for _ in range(warmup):
            next(it)
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(rounds):
        for name, it in loops.items():
            t0 = time.perf_counter()
            for _ in range(block):
                next(it)
            sync(device)
            times[name].append((time.perf_counter() - t0) / block)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def run(args) -> list[dict]:
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for overrides in CASES[: 1 if args.quick else None]:
            cfg = config(out, device, overwrite=True, **overrides)
            dataset = data(cfg)
            loops = {"genlab": genlab_loop(cfg, dataset), "peer": bare_loop(cfg, dataset, device)}
            with contextlib.redirect_stdout(sys.stderr):  # the progress bar binds to stdout on its first step
                t = interleave(loops, device, block=10, rounds=3 if args.quick else 7, warmup=3)
            for it in loops.values():
                it.close()
            rows.append({
                "case": f"train_fsq step{' (defaults)' if not overrides else ''}: {cfg.image_size} px, {cfg.channels} "
                        f"channels, batch {cfg.batch_size}, {cfg.optimizer}, clip {cfg.grad_clip}, log every {cfg.log_every}",
                "genlab": f"{1 / t['genlab']:.1f} steps/s (Run)",
                "peer": f"{1 / t['peer']:.1f} steps/s (bare PyTorch loop)",
                "speedup": t["peer"] / t["genlab"],
            })
    return rows
