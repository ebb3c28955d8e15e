"""Training a rectified flow (flow matching, Liu et al. 2022): the loop behind ``scripts/train_flow.py``
and the reflow / distillation runs of ``scripts/reflow.py``.

    cfg = parse_config(FlowTrainConfig, ["--config", "configs/flows/toy2d.yaml"])
    results = train_flow(cfg)

Each step draws fresh source noise ``x_0 ~ N(0, I)`` and per-example times (``uniform``,
``logit_normal`` or ``discrete`` for k-step distillation) and regresses ``v(x_t, t)`` on
``x_1 - x_0``. With ``couplings`` it trains on the fixed pairs ``(z_0, z_1)`` of a coupling
folder instead (reflow; pairs are shuffled together, never re-paired). Class-conditional runs drop
labels to the null class with probability ``p_uncond`` (classifier-free guidance). An EMA of the
weights (:mod:`genlab.train.ema`) is kept, checkpointed and used for evaluation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from genlab.data import TOY2D, Toy2D, build_image_dataset
from genlab.flows import CouplingDataset, TIME_DISTRIBUTIONS, flow_matching_loss, sample_times, straightness
from genlab.flows.evaluate import class_grid, integrate, noise_and_labels, parse_solver, score_samples
from genlab.flows.networks import WEIGHTS_KIND, FlowNetConfig, build_velocity_net, drop_labels, velocity_net_metadata
from genlab.train.config import TrainConfig
from genlab.train.ema import build_ema
from genlab.images import save_grid, save_scatter
from genlab.io import load_weights, save_weights
from genlab.train.optim import build_optimizer
from genlab.train.run import Run, check_finite_loss
from genlab.train.schedule import build_scheduler
from genlab.utils import check_choice


@dataclass
class FlowTrainConfig(TrainConfig, FlowNetConfig):
    """Training a velocity field; the architecture fields come from FlowNetConfig."""

    name: str = "flow_digits"
    dataset: str = "digits"  # toy2d | digits | photos | mnist | cifar10 | celeba | folder (your own images under data_root)
    toy2d: str = "8gaussians"  # the toy2d distribution (dataset: toy2d)
    toy2d_size: int = 100_000  # points in the fixed toy2d training sample
    data_root: str = "data"  # torchvision datasets, or the image folder (flat or class sub-folders) of dataset folder
    test_fraction: float = 0.1  # dataset folder: share of the images held out from training (fixed shuffle)
    test_root: str = ""  # dataset folder: a second folder of held-out images instead of test_fraction
    image_channels: int = 3  # dataset folder: 1 (grayscale) or 3 (RGB); other datasets have their own
    image_size: int = 8  # the digits are 8x8 scans; larger sizes only interpolate
    class_conditional: bool = True  # condition on class labels (needs a labeled dataset)
    p_uncond: float = 0.1  # label dropout to the null class (classifier-free guidance)
    time_distribution: str = "uniform"  # uniform | logit_normal | discrete
    time_mean: float = 0.0  # logit_normal location
    time_std: float = 1.0  # logit_normal scale
    time_steps: int = 1  # discrete: train at t in {0, 1/k, ..., (k-1)/k} (k-step distillation)
    couplings: str = ""  # reflow: a coupling folder of (z0, z1) pairs to train on instead of noise/data
    init_from: str = ""  # start from these flow weights (reflow, distillation)
    ema_decay: float = 0.999  # EMA of the weights (genlab.train.ema, with its warm-up), used for evaluation and saved
    # diffusers' U-Net for 8x8 digits: 32 then 64 channels, self-attention at 4x4
    width: int = 32
    channel_mult: list[int] = field(default_factory=lambda: [1, 2])
    attention_levels: list[int] = field(default_factory=lambda: [1])
    layers_per_block: int = 1
    max_steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eval_every: int = 2000
    ckpt_every: int = 500
    eval_solvers: list[str] = field(default_factory=lambda: ["euler:10", "heun:10"])  # solvers of every evaluation
    eval_samples: int = 500  # samples per evaluation solver
    eval_batch_size: int = 500  # samples integrated together
    guidance_scale: float = 1.0  # classifier-free guidance of the evaluation samples
    rtol: float = 1e-5  # dopri5 evaluation tolerances
    atol: float = 1e-5  # dopri5 absolute tolerance
    straightness_steps: int = 32  # Euler steps of the straightness estimate on a fixed batch; 0 = off
    grid_per_class: int = 10  # images per class in the evaluation grids

    def validate(self) -> None:
        TrainConfig.validate(self)
        self.validate_net()
        check_choice("dataset", self.dataset, ["toy2d", "digits", "photos", "mnist", "cifar10", "celeba", "folder"])
        check_choice("toy2d", self.toy2d, list(TOY2D))
        check_choice("time_distribution", self.time_distribution, TIME_DISTRIBUTIONS)
        if not 0 <= self.p_uncond < 1:
            raise ValueError(f"config key 'p_uncond'={self.p_uncond!r} must be in [0, 1)")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"config key 'ema_decay'={self.ema_decay!r} must be in [0, 1)")
        for key in ("time_steps", "eval_samples", "eval_batch_size", "toy2d_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"config key {key!r}={getattr(self, key)!r} must be >= 1")
        if self.time_std <= 0:
            raise ValueError(f"config key 'time_std'={self.time_std!r} must be > 0")
        for spec in self.eval_solvers:
            parse_solver(spec)
        if self.dataset == "toy2d" and self.net != "mlp":
            raise ValueError(f"dataset='toy2d' holds 2-D points; set --net mlp (got net={self.net!r})")
        if self.dataset != "toy2d" and self.net == "mlp":
            raise ValueError(f"net='mlp' is for toy2d points; images ({self.dataset!r}) need --net unet or --net dit")
        if self.guidance_scale != 1 and not self.class_conditional:
            raise ValueError(f"guidance_scale={self.guidance_scale} needs class_conditional: true")


def build_data(cfg: FlowTrainConfig):
    """``(dataset, data_shape, num_classes)``; items are ``(x1, label)`` or reflow ``(x0, x1, label)``."""
    if cfg.dataset == "toy2d":
        data, shape, classes = Toy2D(cfg.toy2d, cfg.toy2d_size, seed=cfg.seed), (2,), 0
    else:
        extra = ({"channels": cfg.image_channels, "test_fraction": cfg.test_fraction, "test_root": cfg.test_root,
                  "split_seed": cfg.seed} if cfg.dataset == "folder" else {})
        data = build_image_dataset(cfg.dataset, "train", cfg.image_size, root=cfg.data_root, **extra)
        shape, classes = (data.channels, cfg.image_size, cfg.image_size), data.num_classes
    if cfg.class_conditional and not classes:
        raise ValueError(f"dataset={cfg.dataset!r} has no class labels; set --class_conditional false")
    num_classes = classes if cfg.class_conditional else 0
    if cfg.couplings:
        pairs = CouplingDataset(cfg.couplings)
        stored = tuple(pairs.settings["data_shape"])
        if stored != shape or pairs.num_classes != num_classes:
            raise ValueError(f"couplings {cfg.couplings!r} hold pairs of shape {stored} with {pairs.num_classes} classes; "
                             f"this config trains shape {shape} with {num_classes} classes")
        data = pairs
    return data, shape, num_classes


def evaluate(run: Run, cfg: FlowTrainConfig, ema_net, shape, num_classes: int, step: int) -> dict:
    """Sample with the EMA weights for every evaluation solver (split across processes, gathered),
    score on the main process, save a grid or scatter plot, and log everything."""
    acc = run.accelerator
    x0, labels = noise_and_labels(cfg.eval_samples, shape, num_classes, seed=cfg.seed + 1)
    world, rank = acc.num_processes, acc.process_index
    per = -(-cfg.eval_samples // world)
    pad = per * world - cfg.eval_samples  # pad by repeating so every process samples the same count
    x0 = torch.cat([x0, x0[:pad]])
    labels = torch.cat([labels, labels[:pad]]) if labels is not None else None
    mine = slice(rank * per, (rank + 1) * per)
    null = num_classes if num_classes else None
    results = {}
    ema_net.eval()
    from tqdm.auto import tqdm

    for spec in tqdm(cfg.eval_solvers, desc=f"evaluate step {step}", unit="solver", leave=False, disable=not run.is_main,
                     dynamic_ncols=True):
        samples, nfe = integrate(ema_net, x0[mine], labels[mine] if labels is not None else None, spec,
                                 guidance_scale=cfg.guidance_scale, null_label=null, batch_size=cfg.eval_batch_size,
                                 device=acc.device, autocast=acc.autocast, rtol=cfg.rtol, atol=cfg.atol)
        samples = acc.gather(samples.to(acc.device)).cpu()[:cfg.eval_samples]
        results[spec] = {"nfe": nfe}
        if not run.is_main:  # the other processes only sample
            continue
        results[spec].update(score_samples(cfg.dataset, samples, labels[:cfg.eval_samples] if labels is not None else None,
                                           cfg.toy2d))
        tag = spec.replace(":", "")
        if cfg.dataset == "toy2d":
            save_scatter(samples, run.path("samples", f"scatter_{tag}_{step:08d}.png"), f"{spec}, step {step}")
        else:
            per_class = min(cfg.grid_per_class, cfg.eval_samples // max(num_classes, 1))
            grid = class_grid(samples, labels[:cfg.eval_samples], num_classes, per_class) if num_classes else samples[:64]
            save_grid(grid, run.path("samples", f"grid_{tag}_{step:08d}.png"), nrow=per_class if num_classes else 8)
    if cfg.straightness_steps and run.is_main:
        n = min(64, cfg.eval_samples)
        xs = x0[:n].to(acc.device)
        ys = labels[:n].to(acc.device) if labels is not None else None
        with acc.autocast():
            results["straightness"] = straightness(ema_net, xs, cfg.straightness_steps, labels=ys)
    ema_net.train()
    flat = {f"{spec}/{k}": v for spec, r in results.items() if isinstance(r, dict) for k, v in r.items()
            if isinstance(v, (int, float))}
    if "straightness" in results:
        flat["straightness"] = results["straightness"]
    run.log(step, flat, split="eval")
    return results


def train_flow(cfg: FlowTrainConfig) -> dict:
    """Train (or, with ``cfg.resume``, continue) one flow run; returns the last evaluation."""
    run = Run(cfg)
    acc = run.accelerator

    data, shape, num_classes = build_data(cfg)
    net = build_velocity_net(cfg, shape, num_classes)
    if cfg.init_from:
        load_weights(net, cfg.init_from, WEIGHTS_KIND)
    ema = build_ema(net, cfg.ema_decay).to(acc.device)
    optimizer = build_optimizer(cfg.optimizer, net, cfg.lr, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, cfg.max_steps, cfg.schedule)
    # Its own generator: an iterator over a DataLoader without one (a new epoch, a resume) draws its base seed
    # from the global RNG. The order itself comes from Accelerate's seeded sampler.
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=True, num_workers=cfg.num_workers,
                        generator=torch.Generator().manual_seed(cfg.seed))
    model, optimizer, loader, scheduler = acc.prepare(net, optimizer, loader, scheduler)
    acc.register_for_checkpointing(ema)
    run.print(f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters ({cfg.net}), data {shape}, "
              f"{num_classes} classes, {'reflow on ' + cfg.couplings if cfg.couplings else 'noise -> data'}, "
              f"{acc.num_processes} process(es) on {acc.device}")

    start = run.maybe_resume()
    t0, results = time.time(), {}
    for step, micro_batches in run.steps(loader, start):
        for micro, batch in enumerate(micro_batches):
            g = run.generator(step, micro)  # noise, times, label dropout: a function of (seed, process, step, micro)
            if cfg.couplings:
                x0, x1, labels = batch
            else:
                x1, labels = batch
                x0 = torch.randn(x1.shape, generator=g, device=acc.device)
            t = sample_times(len(x1), cfg.time_distribution, mean=cfg.time_mean, std=cfg.time_std, steps=cfg.time_steps,
                             generator=g, device=acc.device)
            labels = drop_labels(labels, num_classes, cfg.p_uncond, generator=g) if num_classes else None
            with acc.accumulate(model):
                loss = flow_matching_loss(model, x0, x1, t, labels)
                check_finite_loss(step, loss=loss)
                run.optimizer_step(loss, model, optimizer, scheduler, cfg.grad_clip)
        ema.update_parameters(acc.unwrap_model(model))
        if step % cfg.log_every == 0:
            run.log(step, {"loss": acc.reduce(loss.detach(), "mean"), "lr": scheduler.get_last_lr()[0]})
        if run.should_eval(step):
            results = evaluate(run, cfg, ema.module, shape, num_classes, step)
            run.print(f"step {step}: " + json.dumps(results))
        run.maybe_checkpoint(step)

    if not results:  # resumed at max_steps: evaluate what was loaded
        results = evaluate(run, cfg, ema.module, shape, num_classes, cfg.max_steps)
    if run.is_main:
        meta = velocity_net_metadata(cfg, shape, num_classes)
        save_weights(acc.unwrap_model(model), run.path("weights", "flow.safetensors"), WEIGHTS_KIND, meta)
        save_weights(ema.module, run.path("weights", "flow_ema.safetensors"), WEIGHTS_KIND, meta)
        summary = {"eval": results, "steps": cfg.max_steps, "processes": acc.num_processes,
                   "eval_samples": cfg.eval_samples, "guidance_scale": cfg.guidance_scale, "weights": "ema",
                   "rtol": cfg.rtol, "atol": cfg.atol,
                   "seconds_per_step": (time.time() - t0) / max(cfg.max_steps - start, 1)}
        run.write_results(summary)
    run.finish()
    return results


__all__ = ["FlowTrainConfig", "build_data", "evaluate", "train_flow"]
