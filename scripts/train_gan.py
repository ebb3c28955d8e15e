"""Train a GAN with Accelerate; the objective (WGAN-GP, the ReFlow-derived critic, an f-GAN, a
likelihood-ratio game) is chosen by config.

    python scripts/train_gan.py --config configs/gans/25gaussians_wgan_gp.yaml     # 2-D, mode coverage
    python scripts/train_gan.py --config configs/gans/digits.yaml                  # 8 x 8 digits
    python scripts/train_gan.py --objective fgan_kl --g_mode saddle --name kl       # any objective
    python scripts/train_gan.py --objective reflow --generator_loss proximal --proximal_steps 3
    accelerate launch --multi_gpu --num_processes 2 scripts/train_gan.py --max_steps 200
    python scripts/train_gan.py --dataset folder --data_root my_images --image_size 16 --arch dcgan --name mine
    python scripts/train_gan.py --resume                                           # continue runs/gan with its saved config

One step is ``n_critic`` critic updates (each on its own real batch) and one generator update (or
``proximal_steps`` updates towards a fixed proximal target); ``grad_clip`` clips every update, and the
learning-rate schedule (``warmup_steps``, ``schedule``) advances once per step for both networks. Writes ``runs/<name>/``: config.yaml,
metrics.jsonl, TensorBoard logs, checkpoints, ``weights/generator.safetensors`` and
``weights/critic.safetensors``, ``samples/`` (a scatter plot per evaluation for 2-D data, an image
grid for images) and results.json with the last evaluation: mode coverage, high-quality fraction and
sliced Wasserstein distance on 2-D mixtures; FD-digits-cnn with its noise floor on digits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from genlab.data import TOY2D, Toy2D, build_image_dataset, sample_toy2d
from genlab.gans import CRITIC_KIND, GENERATOR_KIND, OBJECTIVES, NetworkConfig, NonFiniteCriticError, build_critic, build_generator, build_objective, network_config_dict
from genlab.gans.wgan import proximal_loss, proximal_target
from genlab.metrics import digits_scores, mode_coverage, sliced_wasserstein, toy2d_scores
from genlab.train import Run, TrainConfig, build_optimizer, build_scheduler, check_finite_loss, parse_config, save_grid, save_scatter, save_weights
from genlab.train.config import check_rate
from genlab.train.ema import build_ema
from genlab.train.finite import ADVICE
from genlab.utils import check_choice

IMAGE_CHANNELS = {"digits": 1, "mnist": 1, "photos": 3, "cifar10": 3, "celeba": 3}
GENERATOR_LOSSES = ["one_step", "proximal"]


@dataclass
class GANTrainConfig(TrainConfig, NetworkConfig):
    """A GAN run; the network fields come from :class:`NetworkConfig` (``data_shape`` follows the dataset)."""

    name: str = "gan"
    dataset: str = "25gaussians"  # a toy2d name (25gaussians, 8gaussians, moons, ...) or digits | mnist | photos | cifar10 | celeba | folder
    data_root: str = "data"  # torchvision datasets, or the image folder (flat or class sub-folders) of dataset folder
    test_fraction: float = 0.1  # dataset folder: share of the images held out from training (fixed shuffle)
    test_root: str = ""  # dataset folder: a second folder of held-out images instead of test_fraction
    image_channels: int = 3  # dataset folder: 1 (grayscale) or 3 (RGB); other datasets have their own
    image_size: int = 16  # images are resized to image_size x image_size
    toy_points: int = 100_000  # size of the fixed 2-D training sample
    objective: str = "wgan_gp"  # wgan_gp | reflow | fgan_<divergence> | lr_<example>
    g_mode: str = "nonsat"  # f-GAN generator loss: nonsat | saddle
    gp_weight: float | None = None  # None: 10 for wgan_gp, 0.5 for reflow
    logit_clip: float | None = None  # f-GAN only: clamp critic logits (explicit, off by default)
    generator_loss: str = "one_step"  # wgan_gp / reflow: one_step (-D(G(z))) | proximal
    proximal_steps: int = 3  # generator steps towards one proximal target
    proximal_eps: float = 0.05  # the ODE step size of the proximal target
    n_critic: int = 5  # critic updates per generator update
    lr: float = 1e-4  # critic learning rate
    lr_g: float | None = None  # generator learning rate; None: lr
    betas: list[float] = field(default_factory=lambda: [0.0, 0.9])  # Adam, as in WGAN-GP
    max_steps: int = 5000  # generator steps
    batch_size: int = 256  # per process, per critic update
    latent_dim: int = 2  # dimension of the generator's Gaussian latent
    width: int = 256  # hidden width (MLP) or base channels (DCGAN)
    depth: int = 3  # hidden layers of the MLPs
    data_shape: list[int] = field(default_factory=list)  # filled from the dataset
    ema_decay: float = 0.0  # EMA of the generator's weights (genlab.train.ema, with its warm-up), evaluated and saved; 0 = off
    eval_samples: int = 2500  # samples per evaluation (2-D protocol: 2500)
    grid_images: int = 64  # images in each sample grid
    log_every: int = 100
    eval_every: int = 1000
    ckpt_every: int = 1000

    def validate(self) -> None:
        TrainConfig.validate(self)
        datasets = [*TOY2D, *IMAGE_CHANNELS, "folder"]
        check_choice("dataset", self.dataset, datasets)
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("generator_loss", self.generator_loss, GENERATOR_LOSSES)
        channels = self.image_channels if self.dataset == "folder" else IMAGE_CHANNELS.get(self.dataset)
        derived = [2] if self.dataset in TOY2D else [channels, self.image_size, self.image_size]
        if self.data_shape and list(self.data_shape) != derived:
            raise ValueError(f"config key 'data_shape'={list(self.data_shape)} does not match dataset={self.dataset!r} "
                             f"({derived}); leave it out, it follows the dataset")
        self.data_shape = derived
        self.validate_network()
        if self.grad_accum not in (None, 1):
            raise ValueError(f"config key 'grad_accum'={self.grad_accum} is not supported by train_gan.py; use 1 "
                             "(a step already takes n_critic critic batches)")
        if self.generator_loss == "proximal" and self.objective not in ("wgan_gp", "reflow"):
            raise ValueError(f"generator_loss='proximal' needs a potential critic (objective wgan_gp or reflow); "
                             f"got objective={self.objective!r}")
        for key, minimum in (("n_critic", 1), ("proximal_steps", 1), ("eval_samples", 10)):
            if getattr(self, key) < minimum:
                raise ValueError(f"config key {key!r}={getattr(self, key)!r} must be >= {minimum}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"config key 'ema_decay'={self.ema_decay!r} must be in [0, 1)")
        if not self.proximal_eps > 0:
            raise ValueError(f"config key 'proximal_eps'={self.proximal_eps!r} must be > 0")
        if self.lr_g is not None:
            check_rate("lr_g", self.lr_g)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"config key 'betas'={self.betas!r} must be two numbers in [0, 1)")
        # the objective's own checks (gp_weight / logit_clip / g_mode for the wrong objective)
        build_objective(self.objective, self.g_mode, self.gp_weight, self.logit_clip)


def build_dataset(cfg: GANTrainConfig):
    if cfg.dataset in TOY2D:
        return Toy2D(cfg.dataset, cfg.toy_points, seed=cfg.seed)
    extra = {"seed": cfg.seed} if cfg.dataset == "photos" else {}
    if cfg.dataset == "folder":
        extra = {"channels": cfg.image_channels, "test_fraction": cfg.test_fraction, "test_root": cfg.test_root,
                 "split_seed": cfg.seed}
    return build_image_dataset(cfg.dataset, "train", cfg.image_size, root=cfg.data_root, **extra)


@torch.no_grad()
def generate(run: Run, generator, n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """``n`` samples from fixed latents (the same at every evaluation), split over the processes and gathered."""
    acc = run.accelerator
    per = -(-n // acc.num_processes)
    z = torch.randn(per * acc.num_processes, latent_dim, generator=torch.Generator().manual_seed(seed))
    g = acc.unwrap_model(generator)
    was_training = g.training
    g.eval()
    mine = g(z[acc.process_index * per:(acc.process_index + 1) * per].to(run.device)).float()
    g.train(was_training)
    return acc.gather(mine).cpu()[:n]


def evaluate(run: Run, cfg: GANTrainConfig, generator, step: int, final: bool) -> dict:
    """Metrics of ``eval_samples`` samples (main process); MMD only at the end, it is the slow one."""
    samples = generate(run, generator, cfg.eval_samples, cfg.latent_dim, seed=cfg.seed + 12345)
    metrics: dict = {}
    if run.is_main:
        if cfg.dataset in TOY2D:
            if final:
                metrics = toy2d_scores(samples, cfg.dataset, seed=cfg.seed)
            else:
                reference = sample_toy2d(cfg.dataset, len(samples), seed=10_000 + cfg.seed)  # toy2d_scores' reference
                metrics = {"swd": sliced_wasserstein(samples, reference)}
                if cfg.dataset in ("8gaussians", "25gaussians"):
                    metrics.update(mode_coverage(samples, cfg.dataset))
            reference = Toy2D(cfg.dataset, len(samples), seed=cfg.seed + 777).points
            save_scatter(samples, run.path("samples", f"scatter_{step:08d}.png"), f"{cfg.objective}, step {step}", reference=reference)
        else:
            save_grid(samples[: cfg.grid_images], run.path("samples", f"grid_{step:08d}.png"), nrow=8)
            if cfg.dataset == "digits":
                score = digits_scores(samples, seed=cfg.seed)
                metrics = {"fd_digits_cnn": score.value, **{k: v for k, v in score.extra.items() if isinstance(v, float)}}
        run.log(step, {k: v for k, v in metrics.items() if isinstance(v, (int, float))}, split="eval")
    return metrics


def _step(run: Run, model, optimizer, loss: torch.Tensor, step: int, name: str) -> None:
    if run.accelerator.scaler is None:  # with fp16, the GradScaler skips overflowing steps and lowers its scale
        check_finite_loss(step, **{name: loss})
    optimizer.zero_grad(set_to_none=True)
    run.accelerator.backward(loss)
    if run.cfg.grad_clip > 0:
        run.accelerator.clip_grad_norm_(model.parameters(), run.cfg.grad_clip)
    optimizer.step()


def critic_update(run: Run, objective, generator, critic, opt_d, real: torch.Tensor, latent_dim: int, step: int,
                  g: torch.Generator):
    """One critic step on a real batch and as many fresh fakes (latents from ``g``); returns ``(loss, stats)``."""
    with torch.no_grad():
        fake = generator(torch.randn(len(real), latent_dim, device=run.device, generator=g))
    loss, stats = objective.critic_loss(critic, real, fake, scaler=run.accelerator.scaler)
    _step(run, critic, opt_d, loss, step, "critic_loss")
    return loss, stats


def generator_update(run: Run, cfg: GANTrainConfig, objective, generator, critic, opt_g, step: int,
                     g: torch.Generator) -> torch.Tensor:
    """The objective's generator step, or ``proximal_steps`` steps towards one proximal target (Su 9668);
    latents from ``g``."""
    z = torch.randn(cfg.batch_size, cfg.latent_dim, device=run.device, generator=g)
    if cfg.generator_loss == "one_step":
        loss, _ = objective.generator_loss(critic, generator(z))
        _step(run, generator, opt_g, loss, step, "generator_loss")
        return loss
    with torch.no_grad():
        x_old = generator(z)
    target = proximal_target(critic, x_old, cfg.proximal_eps, run.accelerator.scaler)
    for _ in range(cfg.proximal_steps):
        loss = proximal_loss(generator(z), target)
        _step(run, generator, opt_g, loss, step, "generator_loss")
    return loss


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(GANTrainConfig, argv, doc=__doc__, prog="train_gan.py")
    run = Run(cfg)
    acc = run.accelerator

    dataset = build_dataset(cfg)
    net_cfg = NetworkConfig(**network_config_dict(cfg))
    generator, critic = build_generator(net_cfg), build_critic(net_cfg)
    objective = build_objective(cfg.objective, cfg.g_mode, cfg.gp_weight, cfg.logit_clip)
    opt_g = build_optimizer(cfg.optimizer, generator, cfg.lr if cfg.lr_g is None else cfg.lr_g, cfg.weight_decay, tuple(cfg.betas))
    opt_d = build_optimizer(cfg.optimizer, critic, cfg.lr, cfg.weight_decay, tuple(cfg.betas))
    # One loader batch feeds the n_critic critic updates of a step. The loader gets its own generator:
    # without one, every new iterator (each epoch, and the one a resumed run starts with) draws a seed
    # from the global RNG, which would shift the latents of a resumed run away from an uninterrupted one.
    loader = DataLoader(dataset, batch_size=cfg.batch_size * cfg.n_critic, shuffle=True, drop_last=True,
                        num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
    sched_g, sched_d = (build_scheduler(opt, cfg.warmup_steps, cfg.max_steps, cfg.schedule) for opt in (opt_g, opt_d))
    generator, critic, opt_g, opt_d, loader, sched_g, sched_d = acc.prepare(generator, critic, opt_g, opt_d, loader,
                                                                           sched_g, sched_d)
    # with ema_decay, the averaged generator is evaluated and saved (Yazici et al. 2019, "The Unusual
    # Effectiveness of Averaging in GAN Training")
    ema = None
    if cfg.ema_decay > 0:
        ema = build_ema(acc.unwrap_model(generator), cfg.ema_decay)
        acc.register_for_checkpointing(ema)
    sampler = ema.module if ema is not None else generator  # what is evaluated and saved
    n_params = sum(p.numel() for m in (generator, critic) for p in m.parameters())
    run.print(f"{cfg.objective} on {cfg.dataset}: {n_params / 1e6:.3f}M parameters, {acc.num_processes} process(es) on {acc.device}")

    start = run.maybe_resume()
    t0, metrics = time.time(), {}
    for step, (batch,) in run.steps(loader, start):
        real_all = batch[0] if isinstance(batch, (list, tuple)) else batch
        g = run.generator(step)  # the latents of this step: a function of (seed, process, step)
        try:
            for real in real_all.chunk(cfg.n_critic):
                loss_d, stats = critic_update(run, objective, generator, critic, opt_d, real, cfg.latent_dim, step, g)
            loss_g = generator_update(run, cfg, objective, generator, critic, opt_g, step, g)
            if ema is not None:
                ema.update_parameters(acc.unwrap_model(generator))
            run.step_scheduler(sched_g, opt_g)
            run.step_scheduler(sched_d, opt_d)
        except NonFiniteCriticError as err:
            raise FloatingPointError(f"{err} at step {step}; stopping. {ADVICE}") from None
        if step % cfg.log_every == 0:
            logged = {"loss": loss_d.detach(), "critic_loss": loss_d.detach(), "generator_loss": loss_g.detach(), **stats}
            run.log(step, {**{k: acc.reduce(v.detach().float(), "mean") for k, v in logged.items()},
                           "lr": sched_d.get_last_lr()[0]})
        if run.should_eval(step):
            metrics = evaluate(run, cfg, sampler, step, final=step == cfg.max_steps)
            if metrics:
                run.print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))))
        run.maybe_checkpoint(step)  # checks generator, critic, EMA and optimizer state for NaN/Inf first

    if start >= cfg.max_steps:  # resumed at max_steps: evaluate what was loaded
        metrics = evaluate(run, cfg, sampler, cfg.max_steps, final=True)
    if run.is_main:
        config = {**network_config_dict(cfg), "dataset": cfg.dataset, "objective": cfg.objective}
        save_weights(acc.unwrap_model(sampler), run.path("weights", "generator.safetensors"), GENERATOR_KIND, config)
        save_weights(acc.unwrap_model(critic), run.path("weights", "critic.safetensors"), CRITIC_KIND, config)
        results = {**metrics, "objective": cfg.objective, "dataset": cfg.dataset, "seed": cfg.seed, "steps": cfg.max_steps,
                   "seconds_per_step": (time.time() - t0) / max(cfg.max_steps - start, 1), "processes": acc.num_processes}
        run.write_results(results)
    run.finish()
    return metrics


if __name__ == "__main__":
    main()
