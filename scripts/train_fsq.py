"""Train the FSQ image tokenizer (encoder -> FSQ -> decoder) with Accelerate.

    python scripts/train_fsq.py                                   # photos, levels [8,5,5,5], ~5 min on 2 cores
    accelerate launch scripts/train_fsq.py                        # same, through Accelerate
    accelerate launch --num_processes 2 scripts/train_fsq.py      # two processes (CPU or GPU)
    python scripts/train_fsq.py --config configs/fsq/photos_long.yaml
    python scripts/train_fsq.py --max_steps 100 --name quick --mixed_precision bf16
    python scripts/train_fsq.py --resume                          # continue runs/fsq from its newest checkpoint
    python scripts/train_fsq.py --config configs/fsq/photos64_gan.yaml   # VQGAN-style: L2 + PatchGAN (hinge), 64 x 64

Writes ``runs/<name>/``: config.yaml, metrics.jsonl, TensorBoard logs (tb/), checkpoints,
weights/tokenizer.safetensors, samples/reconstructions_*.png (originals on odd rows,
reconstructions below them) and results.json with the test-set PSNR, SSIM, high-frequency ratio,
codebook usage and perplexity (on digits also rFD-digits-cnn and the classifier's accuracy).

The loss fields (``perceptual_weight``, ``adversarial``, ``disc_weight``, ``disc_start``, ``disc_lr``,
``adaptive_weight``, ``lecam_weight``, ...) are :class:`genlab.tokenizers.losses.TokenizerLossConfig`'s:
with ``adversarial`` set, a PatchGAN discriminator trains with its own optimizer, and both networks
checkpoint and resume together.

``main`` takes the config class, so ``train_vqvae.py`` runs this same loop with ``quantizer: vq``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlab.data import build_image_dataset  # noqa: E402
from genlab.tokenizers import TokenizerConfig, build_tokenizer, tokenizer_config_dict  # noqa: E402
from genlab.tokenizers.autoencoder import WEIGHTS_KIND  # noqa: E402
from genlab.tokenizers.evaluate import evaluate_tokenizer  # noqa: E402
from genlab.tokenizers.losses import TokenizerLoss, TokenizerLossConfig, last_layer  # noqa: E402
from genlab.train import Run, TrainConfig, build_optimizer, check_finite_loss, lr_lambda, parse_config, save_grid, save_weights  # noqa: E402


@dataclass
class TokenizerTrainConfig(TrainConfig, TokenizerConfig, TokenizerLossConfig):
    """Training an image tokenizer; the architecture fields come from TokenizerConfig."""

    name: str = "fsq"
    dataset: str = "photos"  # photos | digits | mnist | cifar10 | celeba | folder
    data_root: str = "data"  # torchvision datasets or an ImageFolder
    channels: int = 32
    max_steps: int = 1600
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 50
    grad_clip: float = 1.0
    eval_every: int = 800
    ckpt_every: int = 400
    eval_batch_size: int = 128
    grid_images: int = 32
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])

    def validate(self) -> None:
        TrainConfig.validate(self)
        self.validate_tokenizer()
        self.validate_losses()


def evaluate_and_show(run: Run, model, test_loader, test_images: torch.Tensor, step: int) -> dict:
    metrics = evaluate_tokenizer(model, test_loader, gather=run.accelerator.gather_for_metrics,
                                 digits=run.cfg.dataset == "digits")
    run.log(step, metrics, split="test")
    if run.is_main:
        model_ = run.accelerator.unwrap_model(model)
        model_.eval()
        with torch.no_grad():
            rec = model_(test_images.to(run.device)).reconstruction.float().clamp(-1, 1).cpu()
        model_.train()
        rows = torch.stack([test_images.view(-1, 8, *test_images.shape[1:]), rec.view(-1, 8, *rec.shape[1:])], 1)
        save_grid(rows.flatten(0, 2), run.path("samples", f"reconstructions_{step:08d}.png"), nrow=8, scale=2)
    return metrics


def main(argv: list[str] | None = None, config_cls=TokenizerTrainConfig) -> dict:
    cfg = parse_config(config_cls, argv)
    run = Run(cfg)
    acc = run.accelerator

    extra = {"seed": cfg.seed} if cfg.dataset == "photos" else {}
    train_set = build_image_dataset(cfg.dataset, "train", cfg.image_size, root=cfg.data_root, **extra)
    test_set = build_image_dataset(cfg.dataset, "test", cfg.image_size, root=cfg.data_root)
    if train_set.channels != cfg.image_channels:
        raise ValueError(f"dataset={cfg.dataset!r} has {train_set.channels} channels; set --image_channels {train_set.channels}")
    n_grid = min(cfg.grid_images, len(test_set)) // 8 * 8
    grid_ids = torch.linspace(0, len(test_set) - 1, n_grid).round().long().tolist()  # spread over the test set
    test_images = torch.stack([test_set[i][0] for i in grid_ids])

    model = build_tokenizer(cfg)
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.warmup_steps))
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
              f"{acc.unwrap_model(model).codebook_size} codes, {acc.num_processes} process(es) on {acc.device}")

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
                   "processes": acc.num_processes, "codebook_size": acc.unwrap_model(model).codebook_size}
        run.write_results(results)
    run.finish()
    return metrics


if __name__ == "__main__":
    main()
