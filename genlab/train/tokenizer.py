"""Training an image tokenizer (encoder -> FSQ or VQ -> decoder): the loop behind ``scripts/train_fsq.py``
and ``scripts/train_vqvae.py``, and the tokenizer ``scripts/train_lm.py`` trains for its digits.

    cfg = parse_config(TokenizerTrainConfig, ["--max_steps", "100"])
    metrics = train_tokenizer(cfg)          # runs/<name>/ with weights/tokenizer.safetensors

The run folder holds config.yaml, metrics.jsonl, TensorBoard logs (tb/), checkpoints,
weights/tokenizer.safetensors, samples/reconstructions_*.png (originals on odd rows, reconstructions
below them) and results.json with the held-out PSNR, SSIM, high-frequency ratio, codebook usage and
perplexity (on digits also rFD-digits-cnn and the classifier's accuracy). With ``adversarial`` set, a
PatchGAN discriminator trains with its own optimizer, and both networks checkpoint and resume together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from genlab.data import IMAGE_DATASETS, build_image_dataset
from genlab.tokenizers import TokenizerConfig, build_tokenizer, tokenizer_config_dict
from genlab.tokenizers.autoencoder import WEIGHTS_KIND
from genlab.tokenizers.evaluate import evaluate_tokenizer
from genlab.tokenizers.losses import TokenizerLoss, TokenizerLossConfig, last_layer
from genlab.train.config import TrainConfig
from genlab.images import save_grid
from genlab.io import save_weights
from genlab.train.optim import build_optimizer
from genlab.train.run import Run, check_finite_loss
from genlab.train.schedule import build_scheduler
from genlab.utils import check_choice


@dataclass
class TokenizerTrainConfig(TrainConfig, TokenizerConfig, TokenizerLossConfig):
    """Training an image tokenizer; the architecture fields come from TokenizerConfig, the loss fields
    (perceptual, adversarial) from TokenizerLossConfig."""

    name: str = "fsq"
    dataset: str = "photos"  # photos | digits | mnist | cifar10 | celeba | folder (your own images under data_root)
    data_root: str = "data"  # torchvision datasets, or the image folder (flat or class sub-folders) of dataset folder
    test_fraction: float = 0.1  # dataset folder: share of the images held out for every test score (fixed shuffle)
    test_root: str = ""  # dataset folder: a second folder of held-out images instead of test_fraction
    channels: int = 32  # base width of the encoder and decoder
    max_steps: int = 1600
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 50
    grad_clip: float = 1.0
    eval_every: int = 800
    ckpt_every: int = 400
    eval_batch_size: int = 128  # images per evaluation batch
    grid_images: int = 32  # held-out images shown in each reconstruction grid (a multiple of 8)
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # FSQ levels per latent channel

    def validate(self) -> None:
        TrainConfig.validate(self)
        check_choice("dataset", self.dataset, IMAGE_DATASETS)
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"config key 'test_fraction'={self.test_fraction!r} must be in [0, 1)")
        self.validate_tokenizer()
        self.validate_losses()


# The VQ of the default VQ-VAE run: 8-channel latents, EMA codebook (decay 0.99, Laplace smoothing),
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
    """The tokenizer config with ``quantizer: vq``; ``quantizer_options`` are merged over ``VQ_DEFAULTS``."""

    name: str = "vqvae"
    quantizer: str = "vq"
    quantizer_options: dict = field(default_factory=dict)  # VectorQuantizer options over VQ_DEFAULTS (one key may be given alone)

    def __post_init__(self) -> None:
        self.quantizer_options = {**VQ_DEFAULTS, **self.quantizer_options}


def image_splits(cfg) -> tuple:
    """``(train_set, test_set)`` of an image config (``dataset``, ``image_size``, ``data_root``; for a
    folder also ``image_channels``, ``test_fraction``, ``test_root``)."""
    train_extra, test_extra = {}, {}
    if cfg.dataset == "photos":
        train_extra = {"seed": cfg.seed}
    if cfg.dataset == "folder":
        train_extra = test_extra = {"channels": getattr(cfg, "image_channels", 3), "test_fraction": cfg.test_fraction,
                                    "test_root": cfg.test_root, "split_seed": cfg.seed}
    train_set = build_image_dataset(cfg.dataset, "train", cfg.image_size, root=cfg.data_root, **train_extra)
    test_set = build_image_dataset(cfg.dataset, "test", cfg.image_size, root=cfg.data_root, **test_extra)
    return train_set, test_set


def evaluate_and_show(run: Run, model, test_loader, test_images: torch.Tensor, step: int) -> dict:
    """Held-out metrics (every process, gathered) and a reconstruction grid (main process)."""
    metrics = evaluate_tokenizer(model, test_loader, gather=run.accelerator.gather_for_metrics,
                                 digits=run.cfg.dataset == "digits")
    run.log(step, metrics, split="test")
    if run.is_main and len(test_images):
        model_ = run.accelerator.unwrap_model(model)
        model_.eval()
        with torch.no_grad():
            rec = model_(test_images.to(run.device)).reconstruction.float().clamp(-1, 1).cpu()
        model_.train()
        rows = torch.stack([test_images.view(-1, 8, *test_images.shape[1:]), rec.view(-1, 8, *rec.shape[1:])], 1)
        save_grid(rows.flatten(0, 2), run.path("samples", f"reconstructions_{step:08d}.png"), nrow=8, scale=2)
    return metrics


def train_tokenizer(cfg: TokenizerTrainConfig) -> dict:
    """Train (or, with ``cfg.resume``, continue) one tokenizer run; returns the last held-out metrics."""
    run = Run(cfg)
    acc = run.accelerator

    train_set, test_set = image_splits(cfg)
    if train_set.channels != cfg.image_channels:
        raise ValueError(f"dataset={cfg.dataset!r} has {train_set.channels} channels; set --image_channels {train_set.channels}")
    n_grid = min(cfg.grid_images, len(test_set)) // 8 * 8
    grid_ids = torch.linspace(0, len(test_set) - 1, n_grid).round().long().tolist()  # spread over the test set
    test_images = torch.stack([test_set[i][0] for i in grid_ids]) if grid_ids else torch.zeros(0)

    model = build_tokenizer(cfg)
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, cfg.max_steps, cfg.schedule)
    # Its own generator: an iterator over a DataLoader without one (a new epoch, a resume) draws its base seed
    # from the global RNG. The order itself comes from Accelerate's seeded sampler.
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, num_workers=cfg.num_workers,
                        generator=torch.Generator().manual_seed(cfg.seed))
    test_loader = DataLoader(test_set, batch_size=cfg.eval_batch_size)
    model, optimizer, loader, test_loader, scheduler = acc.prepare(model, optimizer, loader, test_loader, scheduler)
    # perceptual / adversarial terms: the discriminator and its optimizer are prepared (and so checkpointed)
    # next to the tokenizer's; nothing is built (no random draw) for the plain reconstruction loss
    tok_loss = TokenizerLoss(cfg, cfg.image_channels, seed=cfg.seed).to(acc.device)
    disc = opt_d = None
    if tok_loss.adversarial:
        disc, opt_d = acc.prepare(*tok_loss.build_discriminator(cfg.lr))
        acc.register_for_checkpointing(tok_loss)  # its generator and LeCam anchors
    run.print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, codebook of "
              f"{acc.unwrap_model(model).codebook_size} codes, {len(train_set)} training and {len(test_set)} held-out "
              f"images, {acc.num_processes} process(es) on {acc.device}, mixed precision {acc.mixed_precision}")

    start = run.maybe_resume()
    quantizer = acc.unwrap_model(model).quantizer
    t0, eval_seconds, metrics = time.time(), 0.0, {}
    for step, micro_batches in run.steps(loader, start):
        for images, _ in micro_batches:
            with acc.accumulate(model):
                out = model(images)
                loss, extra = tok_loss.generator_loss(step, images, out, last_layer(acc.unwrap_model(model).decoder),
                                                      acc.unwrap_model(disc) if disc is not None else None)
                check_finite_loss(step, **out.losses, **extra)
                run.optimizer_step(loss, model, optimizer, scheduler, cfg.grad_clip)
                extra.update(tok_loss.discriminator_step(step, images, out.reconstruction, disc, opt_d, acc.backward,
                                                         acc.scaler))
        if step % cfg.log_every == 0:
            losses = {k: acc.reduce(v.detach().float(), "mean") for k, v in {**out.losses, **extra}.items()}
            stats = {"dead_codes": quantizer.dead_codes} if hasattr(quantizer, "dead_codes") else {}
            run.log(step, {"loss": loss.detach(), **losses, "lr": scheduler.get_last_lr()[0], **stats})
        if run.should_eval(step):
            t_eval = time.time()
            metrics = evaluate_and_show(run, model, test_loader, test_images, step)
            eval_seconds += time.time() - t_eval
            run.print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        run.maybe_checkpoint(step)

    if not metrics:  # resumed at max_steps: evaluate what was loaded
        metrics = evaluate_and_show(run, model, test_loader, test_images, cfg.max_steps)
    if run.is_main:
        save_weights(acc.unwrap_model(model), run.path("weights", "tokenizer.safetensors"), WEIGHTS_KIND,
                     tokenizer_config_dict(cfg))
        train_seconds = time.time() - t0 - eval_seconds  # training steps and checkpoints, not evaluation
        results = {**metrics, "steps": cfg.max_steps, "seconds_per_step": train_seconds / max(cfg.max_steps - start, 1),
                   "processes": acc.num_processes, "codebook_size": acc.unwrap_model(model).codebook_size,
                   "train_images": len(train_set), "test_images": len(test_set)}
        run.write_results(results)
    run.finish()
    return metrics


__all__ = ["TokenizerTrainConfig", "VQVAETrainConfig", "VQ_DEFAULTS", "evaluate_and_show", "image_splits", "train_tokenizer"]
