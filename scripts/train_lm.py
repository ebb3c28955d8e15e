"""Train the stream language model on captioned digits (text-to-image) or on text alone, with Accelerate.

    python scripts/train_lm.py                                        # digits + captions; trains an FSQ tokenizer first
    python scripts/train_lm.py --config configs/lm/digits.yaml        # the README run
    python scripts/train_lm.py --tokenizer runs/fsq_digits/weights/tokenizer.safetensors
    python scripts/train_lm.py --positions flatten1d --name lm_flat   # flattened RoPE-1D positions
    python scripts/train_lm.py --dataset pystdlib --context 128     # bytes of the Python standard library (12 MB)
    python scripts/train_lm.py --dataset text --name lm_text          # text only (scikit-learn's dataset descriptions)
    accelerate launch --multi_gpu --num_processes 2 scripts/train_lm.py
    python scripts/train_lm.py --resume                               # continue runs/lm with its saved config

Without ``--tokenizer`` the digits run first trains one with ``scripts/train_fsq.py``'s loop (the
``tokenizer_*`` fields) into ``<output_dir>/fsq-digits...`` named after those fields, so runs that
differ only in the LM share it (reused when it already holds weights, resumed when cut short). Writes ``runs/<name>/``:
config.yaml, metrics.jsonl, TensorBoard logs, checkpoints, ``weights/lm.safetensors`` (and a copy
of the tokenizer, ``weights/tokenizer.safetensors``), ``samples/digits_*.png`` (one row per digit,
prompted "a handwritten <digit>") and results.json with the test loss and, for digits, the
classifier's accuracy on the prompted class and FD-digits-cnn with its protocol.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from genlab.data import DIGIT_NAMES, load_digits_tensors
from genlab.data.text import ByteWindows, python_stdlib_corpus
from genlab.lm.captions import TEMPLATES, prompt_for
from genlab.lm.data import TextWindows, captioned_image_batch, default_text, text_batch
from genlab.lm.generate import Sampling, complete_text, text_to_image
from genlab.lm.model import WEIGHTS_KIND, LMConfig, StreamLM, lm_config_dict, next_token_loss, token_losses
from genlab.lm.stream import LOSS_ON, StreamBatch, StreamBuilder
from genlab.metrics import digits_scores
from genlab.optim import lazy_rows
from genlab.tokenizers import ImageTokenizer
from genlab.train import Run, TrainConfig, build_optimizer, build_scheduler, check_finite_loss, parse_config, save_grid, save_weights
from genlab.io import write_text_atomic
from genlab.utils import check_choice


@dataclass
class LMTrainConfig(TrainConfig, LMConfig):
    """Training a :class:`StreamLM`; the architecture fields come from LMConfig."""

    name: str = "lm"
    dataset: str = "digits"  # digits (captioned images) | text (text_file) | pystdlib (the Python standard library's source, genlab.data.text)
    lazy_embeddings: bool = False  # embedding rows absent from a batch keep value and momentum (Lion/Tiger drift, Su 9736)
    eval_windows: int = 512  # dataset=pystdlib: held-out windows scored per evaluation (spread evenly)
    tokenizer: str = ""  # ImageTokenizer weights; empty = train one (train_fsq.py's loop)
    tokenizer_levels: list[int] = field(default_factory=lambda: [8, 6, 5])  # when training one: FSQ levels (240 codes),
    tokenizer_channels: int = 16  # width,
    tokenizer_steps: int = 800  # and steps (configs/fsq/digits.yaml)
    image_size: int = 16  # digits are resized to this; the grid is image_size / downsample
    text_file: str = ""  # dataset=text: a UTF-8 file; empty = scikit-learn's dataset descriptions
    loss_on: str = "all"  # next-token loss on all | text | image targets
    caption_dropout: float = 0.1  # probability of dropping the caption (for classifier-free guidance)
    dropout: float = 0.1
    max_steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3  # peak of a linear warm-up then cosine decay to 0
    schedule: str = "cosine"
    weight_decay: float = 0.1
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eval_every: int = 250
    ckpt_every: int = 250
    eval_samples: int = 20  # generated images per digit at each evaluation
    temperature: float = 1.0  # sampling temperature of the evaluation images
    top_k: int = 0  # evaluation sampling: keep the k most likely tokens; 0 = all
    top_p: float = 1.0  # evaluation sampling: nucleus mass; 1 = off
    guidance: float = 3.0  # evaluation sampling: classifier-free guidance scale

    def validate(self) -> None:
        TrainConfig.validate(self)
        check_choice("dataset", self.dataset, ["digits", "text", "pystdlib"])
        check_choice("loss_on", self.loss_on, LOSS_ON)
        if not 0 <= self.caption_dropout < 1:
            raise ValueError(f"config key 'caption_dropout'={self.caption_dropout} must be in [0, 1)")
        if self.dataset != "digits" and self.loss_on == "image":
            raise ValueError("config key 'loss_on'='image' has no targets with dataset='text'")
        if self.eval_samples < 1:
            raise ValueError(f"config key 'eval_samples'={self.eval_samples} must be >= 1")
        self.sampling().validate()
        self.validate_model()

    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_k, self.top_p, self.guidance)


def digits_tokenizer(cfg: LMTrainConfig) -> str:
    """The tokenizer weights: ``cfg.tokenizer``, or one trained by train_fsq.py's loop (reused if present,
    resumed if cut short)."""
    if cfg.tokenizer:
        return cfg.tokenizer
    from genlab.train.tokenizer import TokenizerTrainConfig, train_tokenizer

    h, w = cfg.image_grid
    levels = "-".join(map(str, cfg.tokenizer_levels))
    name = f"fsq-digits{cfg.image_size}-grid{h}-levels{levels}-ch{cfg.tokenizer_channels}-steps{cfg.tokenizer_steps}"
    path = os.path.join(cfg.output_dir, name, "weights", "tokenizer.safetensors")
    if not os.path.isfile(path):
        if h != w or cfg.image_size % h:
            raise ValueError(f"image_grid={cfg.image_grid} must be square and divide image_size={cfg.image_size} "
                             "to train a tokenizer; pass --tokenizer for other grids")
        tok_cfg = TokenizerTrainConfig(
            dataset="digits", image_size=cfg.image_size, image_channels=1, downsample=cfg.image_size // h,
            levels=list(cfg.tokenizer_levels), channels=cfg.tokenizer_channels, max_steps=cfg.tokenizer_steps,
            ckpt_every=max(cfg.tokenizer_steps // 4, 1), eval_every=0, output_dir=cfg.output_dir, name=name,
            mixed_precision=cfg.mixed_precision, cpu_threads=cfg.cpu_threads, resume=True)
        tok_cfg.validate()
        train_tokenizer(tok_cfg)
    return path


def load_image_tokenizer(cfg: LMTrainConfig, path: str) -> ImageTokenizer:
    tok = ImageTokenizer.from_pretrained(path)
    grid = (cfg.image_size // tok.config.downsample,) * 2
    if tok.config.image_channels != 1 or tok.config.image_size != cfg.image_size or list(grid) != list(cfg.image_grid):
        raise ValueError(f"tokenizer {path!r} turns {tok.config.image_channels}-channel {tok.config.image_size}px images "
                         f"into {list(grid)} grids; this run needs 1-channel {cfg.image_size}px digits on image_grid="
                         f"{cfg.image_grid}")
    if cfg.image_codebook_size not in (0, tok.codebook_size):
        raise ValueError(f"image_codebook_size={cfg.image_codebook_size} does not match the tokenizer's "
                         f"{tok.codebook_size} codes; leave it at 0 to take the tokenizer's")
    return tok


@torch.no_grad()
def tokenize_digits(tok: ImageTokenizer, split: str, image_size: int) -> TensorDataset:
    images, labels = load_digits_tensors(split, image_size)
    grids = torch.cat([tok.encode(chunk) for chunk in images.split(256)])  # (N, h, w)
    return TensorDataset(grids, labels)


def batch_choices(cfg: LMTrainConfig, step: int, process: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption templates and kept captions of one micro-batch, seeded by (seed, step, process):
    the same on resume, whatever the global random state."""
    g = torch.Generator().manual_seed(hash((cfg.seed, step, process)) % 2**62)
    return torch.randint(len(TEMPLATES), (n,), generator=g), torch.rand(n, generator=g) >= cfg.caption_dropout


def make_streams(batch, builder: StreamBuilder | None, cfg: LMTrainConfig, index: int, process: int, device) -> StreamBatch:
    """Streams of one micro-batch: text windows, or captioned digits (caption choices seeded by ``index``)."""
    if builder is None:
        return text_batch(batch)
    grids, labels = batch
    templates, keep = batch_choices(cfg, index, process, len(labels))
    return captioned_image_batch(builder, grids, labels, templates, keep).to(device)


@torch.no_grad()
def evaluate_loss(run: Run, model, loader, builder: StreamBuilder | None) -> dict[str, float]:
    """Test next-token loss in nats per target over the whole test set (captions from the first template,
    none dropped), gathered from every process; for digits also per image token."""
    model.eval()
    kinds = ["all", "image"] if builder is not None else ["all"]
    sums = {on: [] for on in kinds}
    for batch in loader:
        if builder is None:
            streams = text_batch(batch)
        else:
            grids, labels = batch
            n = len(labels)
            streams = captioned_image_batch(builder, grids, labels, torch.zeros(n, dtype=torch.long),
                                            torch.ones(n, dtype=torch.bool)).to(run.device)
        logits = model(streams.tokens, streams.positions, streams.padding_mask)
        for on in kinds:
            ce, mask = token_losses(logits, streams, on)
            sums[on].append(run.accelerator.gather_for_metrics(torch.stack([ce.sum(1), mask.sum(1).float()], 1)))
    model.train()
    out = {}
    for on in kinds:
        total = torch.cat(sums[on]).sum(0)
        out["loss" if on == "all" else "image_loss"] = (total[0] / total[1]).item()
    return out


@torch.no_grad()
def sample_digits(run: Run, model, tok: ImageTokenizer, cfg: LMTrainConfig, step: int) -> dict:
    """Prompt every digit ``eval_samples`` times; grid, classifier accuracy and FD-digits-cnn (main process)."""
    lm = run.accelerator.unwrap_model(model)
    lm.eval()
    labels = torch.arange(10).repeat_interleave(cfg.eval_samples)
    prompts = [prompt_for(int(c)) for c in labels]
    g = torch.Generator(run.device).manual_seed(cfg.seed)
    chunks = tqdm(range(0, len(prompts), 200), desc=f"sample step {step}", unit="batch", leave=False, dynamic_ncols=True)
    grids = torch.cat([text_to_image(lm, prompts[i:i + 200], cfg.sampling(), generator=g) for i in chunks])
    images = tok.to(run.device).decode(grids).float().clamp(-1, 1).cpu()
    lm.train()
    shown = min(cfg.eval_samples, 10)
    rows = images.view(10, cfg.eval_samples, *images.shape[1:])[:, :shown]
    save_grid(rows.flatten(0, 1), run.path("samples", f"digits_{step:08d}.png"), nrow=shown, scale=2)
    score = digits_scores(images, labels, seed=cfg.seed)
    return {"accuracy": score.extra["accuracy"], "fd_digits_cnn": score.value, "fd_noise_floor": score.extra["noise_floor"],
            "per_class_accuracy": dict(zip(DIGIT_NAMES, score.extra["per_class_accuracy"])), "fd_protocol": score.protocol}


def evaluate(run: Run, model, tok, test_loader, builder, cfg: LMTrainConfig, step: int) -> dict:
    """Test loss (every process), then on the main process digit samples or a text sample."""
    metrics = evaluate_loss(run, model, test_loader, builder)
    if run.is_main and tok is not None:
        metrics.update(sample_digits(run, model, tok, cfg, step))
    if run.is_main and tok is None:
        prompt = "The "  # BOS + 4 bytes; the rest of the context is sampled
        text = prompt + complete_text(run.accelerator.unwrap_model(model), [prompt], cfg.context - 5)[0]
        write_text_atomic(run.path("samples", f"text_{step:08d}.txt"), text)
    run.log(step, {k: v for k, v in metrics.items() if isinstance(v, float)}, split="test")
    run.print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(LMTrainConfig, argv, doc=__doc__, prog="train_lm.py")
    tok = None
    if cfg.dataset == "digits":
        tok_path = digits_tokenizer(cfg)
        tok = load_image_tokenizer(cfg, tok_path)
        cfg.image_codebook_size = tok.codebook_size
    run = Run(cfg)
    acc = run.accelerator

    if tok is not None:
        train_set, test_set = (tokenize_digits(tok, s, cfg.image_size) for s in ("train", "test"))
    elif cfg.dataset == "pystdlib":
        corpus = python_stdlib_corpus()
        train_set, test_set = ByteWindows(corpus.train, cfg.context), ByteWindows(corpus.heldout, cfg.context, cfg.eval_windows)
    else:
        text = open(cfg.text_file, encoding="utf-8").read() if cfg.text_file else default_text()
        train_set, test_set = (TextWindows(text, cfg.context, s) for s in ("train", "test"))
    model = StreamLM(cfg)
    builder = StreamBuilder(model.vocab, cfg.positions) if tok is not None else None
    betas = (0.9, 0.95) if cfg.optimizer == "adamw" else None  # GPT-style AdamW; Lion/Tiger keep their defaults
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay, betas=betas)
    if cfg.lazy_embeddings:
        lazy_rows(optimizer)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, cfg.max_steps, cfg.schedule)
    # Its own generator: making an iterator (again on resume) must not draw from the global RNG that dropout uses.
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, num_workers=cfg.num_workers,
                        generator=torch.Generator().manual_seed(cfg.seed))
    test_loader = DataLoader(test_set, batch_size=256)
    model, optimizer, loader, test_loader, scheduler = acc.prepare(model, optimizer, loader, test_loader, scheduler)
    run.print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
              f"vocabulary {acc.unwrap_model(model).vocab.size}, {cfg.positions} positions, {acc.num_processes} process(es) on {acc.device}")

    start = run.maybe_resume()
    t0, metrics = time.time(), {}
    for step, micro_batches in run.steps(loader, start):
        for m, batch in enumerate(micro_batches):
            streams = make_streams(batch, builder, cfg, step * cfg.grad_accum + m, acc.process_index, acc.device)
            with acc.accumulate(model):
                loss = next_token_loss(model(streams.tokens, streams.positions, streams.padding_mask), streams, cfg.loss_on)
                check_finite_loss(step, loss=loss)
                run.optimizer_step(loss, model, optimizer, scheduler, cfg.grad_clip)
        if step % cfg.log_every == 0:
            run.log(step, {"loss": acc.reduce(loss.detach(), "mean"), "lr": scheduler.get_last_lr()[0]})
        if run.should_eval(step):
            metrics = evaluate(run, model, tok, test_loader, builder, cfg, step)
        run.maybe_checkpoint(step)

    if not metrics:  # resumed at max_steps: evaluate what was loaded
        metrics = evaluate(run, model, tok, test_loader, builder, cfg, cfg.max_steps)
    if run.is_main:
        lm = acc.unwrap_model(model)
        save_weights(lm, run.path("weights", "lm.safetensors"), WEIGHTS_KIND, lm_config_dict(lm.config))
        if tok is not None:
            shutil.copyfile(tok_path, run.path("weights", "tokenizer.safetensors"))
        results = {**metrics, "steps": cfg.max_steps, "seconds_per_step": (time.time() - t0) / max(cfg.max_steps - start, 1),
                   "processes": acc.num_processes, **({"corpus": corpus.info()} if cfg.dataset == "pystdlib" else {}), "parameters": sum(p.numel() for p in lm.parameters())}
        run.write_results(results)
    run.finish()
    return metrics


if __name__ == "__main__":
    main()
