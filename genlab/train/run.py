"""The run folder and Accelerate setup that every training script shares.

    cfg = parse_config(MyConfig)
    run = Run(cfg)                                   # Accelerator, runs/<name>/, config.yaml, logs
    model, opt, loader = run.accelerator.prepare(model, opt, loader)
    step = run.maybe_resume()                       # with --resume: newest checkpoint, else 0
    for step, micro_batches in run.steps(loader, step):  # progress bar, resumes mid-epoch
        for batch in micro_batches:                       # grad_accum micro-batches per step
            with run.accelerator.accumulate(model):
                loss = loss_of(batch)
                run.optimizer_step(loss, model, opt, scheduler, cfg.grad_clip)
        run.log(step, {"loss": loss})                     # metrics.jsonl + TensorBoard, main process only
        run.maybe_checkpoint(step)
    run.write_results({...})                              # results.json

Runs live in ``<output_dir>/<name>/``: ``config.yaml``, ``checkpoints/step_*/`` (Accelerate state
for resume), ``weights/*.safetensors`` (for use), ``samples/*.png``, ``metrics.jsonl`` and
TensorBoard logs under ``tb/``. The loop itself stays in the script (no Trainer class).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from torch import Tensor
from tqdm.auto import tqdm

from genlab.train.checkpoint import (
    CheckpointError, list_checkpoints, load_checkpoint, remove_stale_temporaries, save_checkpoint,
)
from genlab.train.config import TrainConfig, config_to_dict, dump_config
from genlab.io import write_text_atomic
from genlab.train.finite import check_finite_loss, check_finite_state, training_state
from genlab.train.lock import LOCK_NAME, RunFolderLocked, RunLock
from genlab.train.metrics_file import truncate_records
from genlab.train.rng import reseed_global, step_generator


class Run:
    """Accelerator plus the run folder of one training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, tensorboard: bool = True):
        self.cfg = cfg
        self.dir = Path(cfg.output_dir) / cfg.name
        if cfg.dry_run:
            print(dump_config(cfg), end="")
            sys.exit(0)
        self.accelerator = Accelerator(
            # Without a GPU, Accelerate only forms a process group (gloo) in CPU mode; this is what
            # makes `accelerate launch --multi_gpu --num_processes 2` (torchrun) work on CPU.
            cpu=not _has_gpu(),
            mixed_precision=cfg.mixed_precision,
            gradient_accumulation_steps=cfg.grad_accum,
            log_with="tensorboard" if tensorboard else None,
            project_config=ProjectConfiguration(project_dir=str(self.dir), logging_dir=str(self.dir / "tb")),
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
            step_scheduler_with_optimizer=False,
            dynamo_backend="inductor" if cfg.compile else "no",  # --compile: prepare() compiles the model
        )
        set_seed(cfg.seed)
        if self.device.type == "cpu":
            # `accelerate launch` exports OMP_NUM_THREADS=1; on CPU that would leave cores idle.
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.accelerator.num_processes))
            torch.set_num_threads(cfg.cpu_threads or max(1, (os.cpu_count() or 1) // local))
        self._prepare_folder()
        if tensorboard:
            self.accelerator.init_trackers(cfg.name, config=_flat_hparams(config_to_dict(cfg)))
        self._start_time = time.time()

    # ------------------------------------------------------------------ folder

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"

    def _prepare_folder(self) -> None:
        if self.is_main:
            self._lock = RunLock(self.dir).acquire()  # before anything in the folder is read or changed
        exists = (self.dir / "config.yaml").exists() or list_checkpoints(self.checkpoint_dir)
        if self.is_main:
            if exists and not self.cfg.resume:
                if not self.cfg.overwrite:
                    raise FileExistsError(
                        f"run folder {str(self.dir)!r} already holds a run. Pass --resume to continue it, "
                        "--overwrite to replace it, or --name to start another."
                    )
                _empty_folder(self.dir, keep=LOCK_NAME)
            for p in remove_stale_temporaries(self.dir):
                self.print(f"removed {str(p)!r}, left by a run killed while writing it")
            for sub in ("checkpoints", "weights", "samples"):
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.dir / "config.yaml", dump_config(self.cfg))
        self.accelerator.wait_for_everyone()

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    # ------------------------------------------------------------------ resume and checkpoints

    def maybe_resume(self) -> int:
        """With ``--resume``, load the newest complete checkpoint and return its step (else 0).

        Call after ``accelerator.prepare`` and ``register_for_checkpointing``.
        """
        if not self.cfg.resume:
            return 0
        found = list_checkpoints(self.checkpoint_dir)
        if not found:
            self.print(f"--resume: no checkpoint in {str(self.checkpoint_dir)!r}; starting from step 0")
            self._truncate_metrics(0)  # the records of the killed attempt are written again
            return 0
        step, path = found[-1]
        loaded = load_checkpoint(self.accelerator, path)
        self._truncate_metrics(loaded)
        self._resumed_step = loaded
        self.print(f"resumed from {path} (step {loaded})")
        return loaded

    _resumed_step = 0  # records of steps up to here are already in metrics.jsonl

    def save_checkpoint(self, step: int) -> Path:
        """Check that the weights, buffers, EMA and optimizer state are finite (one host sync), then
        write the checkpoint; a NaN or Inf stops the run and the last good checkpoint stays the newest."""
        check_finite_state(step, training_state(self.accelerator))
        return save_checkpoint(self.accelerator, self.checkpoint_dir, step, keep=self.cfg.keep_checkpoints)

    def maybe_checkpoint(self, step: int) -> None:
        """Checkpoint every ``ckpt_every`` steps and at the last step."""
        every = self.cfg.ckpt_every
        if (every and step % every == 0) or step == self.cfg.max_steps:
            self.save_checkpoint(step)

    def generator(self, step: int, *keys: int) -> torch.Generator:
        """A generator on this process's device for the draws of ``step`` (``keys``: e.g. the
        micro-batch), seeded from ``(seed, rank, step, *keys)``: the same in a resumed run."""
        return step_generator(self.cfg.seed, self.accelerator.process_index, step, *keys, device=self.device)

    def should_eval(self, step: int) -> bool:
        every = self.cfg.eval_every
        return bool(every and step % every == 0) or step == self.cfg.max_steps

    # ------------------------------------------------------------------ data

    def steps(self, loader, start_step: int = 0) -> Iterator[tuple[int, list[Any]]]:
        """Yield ``(step, micro_batches)`` for steps ``start_step + 1 .. max_steps``.

        Each optimizer step gets ``grad_accum`` micro-batches. The loader is cycled through epochs
        (seeded shuffles) and, on resume, skips exactly the batches the earlier run consumed.
        Before each step the global torch RNG is reseeded from ``(seed, rank, step)``
        (:func:`genlab.train.rng.reseed_global`), so the draws that cannot take a generator (dropout,
        library code) depend on the step alone, never on what was drawn before a resume.
        A progress bar shows on the main process.
        """
        k = self.cfg.grad_accum
        batches = self._cycle(loader, start_step * k)
        bar = tqdm(total=self.cfg.max_steps, initial=start_step, disable=not self.is_main, dynamic_ncols=True,
                   desc=self.cfg.name, file=sys.stdout, mininterval=2.0)
        try:
            for step in range(start_step + 1, self.cfg.max_steps + 1):
                micro = [next(batches) for _ in range(k)]
                reseed_global(self.cfg.seed, self.accelerator.process_index, step)
                yield step, micro
                bar.update(1)
                if self._last_loss is not None:
                    bar.set_postfix_str(self._last_loss, refresh=False)
        finally:
            bar.close()

    _last_loss: str | None = None

    def _cycle(self, loader, start_batch: int) -> Iterator[Any]:
        n = len(loader)
        if n == 0:
            raise ValueError("the training data loader is empty; check the dataset and batch_size")
        epoch, skip = divmod(start_batch, n)
        while True:
            loader.set_epoch(epoch)
            it = self.accelerator.skip_first_batches(loader, skip) if skip else loader
            yield from it
            epoch, skip = epoch + 1, 0

    # ------------------------------------------------------------------ logging

    def log(self, step: int, metrics: dict[str, float | Tensor], split: str = "train") -> None:
        """Write metrics to ``metrics.jsonl`` and TensorBoard (main process only).

        Tensors are reduced to floats; call on every process when a value needs gathering first.
        Records of steps up to the checkpoint a run resumed from are already in the file (a run resumed
        at ``max_steps`` evaluates what it loaded): they are not written twice.
        """
        values = {k: (v.item() if isinstance(v, Tensor) else float(v)) for k, v in metrics.items()}
        if not self.is_main or step <= self._resumed_step:  # a resumed run re-evaluating the step it loaded
            return
        record = {"step": step, "split": split, "time": round(time.time() - self._start_time, 2), **values}
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self.accelerator.log({f"{split}/{k}": v for k, v in values.items()}, step=step)
        if split == "train" and "loss" in values:
            self._last_loss = f"loss {values['loss']:.4g}"

    def _truncate_metrics(self, step: int) -> None:
        """Drop records a killed run wrote after the checkpoint it is resumed from (and a partial last line)."""
        if self.is_main:
            truncate_records(self.dir / "metrics.jsonl", step, say=self.print)

    def optimizer_step(self, loss: Tensor, model, optimizer, scheduler=None, grad_clip: float = 0.0) -> None:
        """Backward one micro-batch inside ``accelerator.accumulate(model)``; the prepared optimizer
        and scheduler only step (after clipping to ``grad_clip`` if > 0) when gradients sync."""
        acc = self.accelerator
        acc.backward(loss)
        if acc.sync_gradients and grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    def write_results(self, results: dict[str, Any]) -> None:
        """``results.json`` in the run folder, written atomically (main process), echoed without nested entries."""
        if self.is_main:
            write_text_atomic(self.path("results.json"), json.dumps(results, indent=1))
            self.print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}))

    def print(self, *args: Any) -> None:
        self.accelerator.print(*args)

    def finish(self) -> None:
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        if getattr(self, "_lock", None) is not None:
            self._lock.release()


def lr_lambda(warmup_steps: int):
    """Linear warm-up to the base learning rate, then constant."""
    return lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def _empty_folder(folder: Path, keep: str) -> None:
    """Delete everything in ``folder`` but ``keep`` (the lock file this process holds)."""
    for p in folder.iterdir():
        if p.name != keep:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _has_gpu() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()) or bool(mps and mps.is_available())


def _flat_hparams(d: dict[str, Any]) -> dict[str, Any]:
    """TensorBoard's hparams accept scalars and strings only."""
    return {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in d.items()}


__all__ = ["CheckpointError", "Run", "RunFolderLocked", "check_finite_loss", "lr_lambda"]
