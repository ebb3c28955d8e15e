"""The run folder and Accelerate setup that every training script shares.

    cfg = parse_config(MyConfig)
    run = Run(cfg)                                   # Accelerator (launcher settings applied), runs/<name>/, logs
    scheduler = build_scheduler(opt, cfg.warmup_steps, cfg.max_steps, cfg.schedule)
    model, opt, loader, scheduler = run.accelerator.prepare(model, opt, loader, scheduler)
    step = run.maybe_resume()                       # with --resume: newest checkpoint, else 0
    for step, micro_batches in run.steps(loader, step):  # writes config.yaml; progress bar; resumes mid-epoch
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

**Accelerate's settings.** ``mixed_precision`` and ``grad_accum`` left unset take the launcher's values
(``accelerate launch --mixed_precision bf16 --gradient_accumulation_steps 4``, ``accelerate config``, or
the ``ACCELERATE_MIXED_PRECISION`` / ``ACCELERATE_GRADIENT_ACCUMULATION_STEPS`` variables). A value set
in the config wins over the launcher's, and the override is printed. ``config.yaml`` records the
effective values.

**config.yaml** is written (atomically) only when training really starts, i.e. when :meth:`steps`
begins, after the data, model and any resumed checkpoint loaded. A start that fails earlier leaves no
``config.yaml``; a folder whose run never wrote a checkpoint, weights or results is not a run, and the
same command may start over in it.
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
from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, ProjectConfiguration, set_seed
from torch import Tensor
from tqdm.auto import tqdm

from genlab.train.checkpoint import (
    CheckpointError, list_checkpoints, load_checkpoint, remove_stale_temporaries, save_checkpoint,
)
from genlab.train.config import TrainConfig, config_to_dict, dump_config
from genlab.io import write_text_atomic
from genlab.train.schedule import build_scheduler
from genlab.train.finite import check_finite_loss, check_finite_state, training_state
from genlab.train.lock import LOCK_NAME, RunFolderLocked, RunLock
from genlab.train.metrics_file import truncate_records
from genlab.train.rng import reseed_global, step_generator


class Run:
    """Accelerator plus the run folder of one training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, tensorboard: bool = True):
        self.cfg = cfg
        self.dir = Path(cfg.output_dir) / cfg.name
        precision, accumulation = launcher_settings(cfg)
        self.accelerator = Accelerator(
            # Without a GPU, Accelerate only forms a process group (gloo) in CPU mode; this is what
            # makes `accelerate launch --multi_gpu --num_processes 2` (torchrun) work on CPU.
            cpu=not _has_gpu(),
            mixed_precision=precision,
            # steps() hands out grad_accum micro-batches per step, fetched before they run: syncing at the
            # loader's end would turn the last group of every epoch into grad_accum one-batch updates
            gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=accumulation, sync_with_dataloader=False),
            log_with="tensorboard" if tensorboard else None,
            project_config=ProjectConfiguration(project_dir=str(self.dir), logging_dir=str(self.dir / "tb")),
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
            step_scheduler_with_optimizer=False,
            dynamo_backend="inductor" if cfg.compile else "no",  # --compile: prepare() compiles the model
        )
        # config.yaml records what runs, whichever source set it
        cfg.mixed_precision = str(self.accelerator.mixed_precision)
        cfg.grad_accum = self.accelerator.gradient_accumulation_steps
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

    def holds_run(self) -> bool:
        """Whether the folder holds a run worth keeping: a checkpoint, weights or results."""
        weights = self.dir / "weights"
        return bool(list_checkpoints(self.checkpoint_dir) or (self.dir / "results.json").exists()
                    or (weights.is_dir() and any(weights.iterdir())))

    def _prepare_folder(self) -> None:
        if self.is_main:
            self._lock = RunLock(self.dir).acquire()  # before anything in the folder is read or changed
        exists = self.holds_run()
        if self.is_main:
            if exists and not self.cfg.resume:
                if not self.cfg.overwrite:
                    raise FileExistsError(
                        f"run folder {str(self.dir)!r} already holds a run. Pass --resume to continue it, "
                        "--overwrite to replace it, or --name to start another."
                    )
                _empty_folder(self.dir, keep=LOCK_NAME)
            elif not exists and (self.dir / "config.yaml").exists():
                # a start that failed before its first checkpoint: nothing in it is worth keeping
                _empty_folder(self.dir, keep=LOCK_NAME)
            for p in remove_stale_temporaries(self.dir):
                self.print(f"removed {str(p)!r}, left by a run killed while writing it")
            for sub in ("checkpoints", "weights", "samples"):
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.accelerator.wait_for_everyone()

    def write_config(self) -> None:
        """``config.yaml`` (the resolved config), atomically; :meth:`steps` calls it when training starts."""
        if self.is_main:
            write_text_atomic(self.dir / "config.yaml", dump_config(self.cfg))

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
        if step > self.cfg.max_steps:
            raise ValueError(f"--resume: the run in {str(self.dir)!r} is at step {step}, past max_steps="
                             f"{self.cfg.max_steps}; its weights cannot be taken back to step {self.cfg.max_steps}. "
                             f"Pass --max_steps {step} or more, or start a new run with --name.")
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
        """Yield ``(step, micro_batches)`` for steps ``start_step + 1 .. max_steps`` (first writing config.yaml).

        Each optimizer step gets ``grad_accum`` micro-batches. The loader is cycled through epochs
        (seeded shuffles) and, on resume, skips exactly the batches the earlier run consumed.
        Before each step the global torch RNG is reseeded from ``(seed, rank, step)``
        (:func:`genlab.train.rng.reseed_global`), so the draws that cannot take a generator (dropout,
        library code) depend on the step alone, never on what was drawn before a resume.
        A progress bar shows on the main process.
        """
        self.write_config()
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
        only steps (after clipping to ``grad_clip`` if > 0) when gradients sync, and the scheduler
        with it (:meth:`step_scheduler`)."""
        acc = self.accelerator
        acc.backward(loss)
        if acc.sync_gradients and grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            self.step_scheduler(scheduler, optimizer)
        optimizer.zero_grad(set_to_none=True)

    def step_scheduler(self, scheduler, optimizer) -> None:
        """Advance ``scheduler`` once per real optimizer step: not on accumulation micro-batches, not on
        an fp16 step the loss scaler skipped (the scheduler is prepared with
        ``step_scheduler_with_optimizer=False``, so Accelerate itself never steps it)."""
        if self.accelerator.sync_gradients and not getattr(optimizer, "step_was_skipped", False):
            scheduler.step()

    def write_results(self, results: dict[str, Any]) -> None:
        """``results.json`` in the run folder, written atomically (main process), echoed without nested entries."""
        if self.is_main:
            write_text_atomic(self.path("results.json"), json.dumps(results, indent=1))
            self.print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}))

    def print(self, *args: Any) -> None:
        """Print on the main process above the progress bar (``tqdm.write``), never glued onto it."""
        if self.is_main:
            tqdm.write(" ".join(str(a) for a in args), file=sys.stdout)

    def finish(self) -> None:
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        if getattr(self, "_lock", None) is not None:
            self._lock.release()


def launcher_settings(cfg: TrainConfig) -> tuple[str | None, int]:
    """``(mixed_precision, grad_accum)`` for the Accelerator: the config's where set, else the launcher's.

    ``accelerate launch`` (and ``accelerate config``) export ``ACCELERATE_MIXED_PRECISION`` and
    ``ACCELERATE_GRADIENT_ACCUMULATION_STEPS``. A config value that contradicts them wins and the
    override is printed (on every process' first lines, before the progress bar).
    """
    env_mp = os.environ.get("ACCELERATE_MIXED_PRECISION")
    env_ga = os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
    local_main = os.environ.get("LOCAL_RANK", "0") == "0"
    if cfg.mixed_precision is not None and env_mp is not None and env_mp.lower() != cfg.mixed_precision and local_main:
        print(f"mixed_precision: the config sets {cfg.mixed_precision!r}, the launcher {env_mp.lower()!r}; "
              f"using {cfg.mixed_precision!r} (leave mixed_precision unset to take the launcher's)", flush=True)
    if cfg.grad_accum is not None and env_ga is not None and int(env_ga) != cfg.grad_accum and local_main:
        print(f"grad_accum: the config sets {cfg.grad_accum}, the launcher {int(env_ga)}; using {cfg.grad_accum} "
              "(leave grad_accum unset to take the launcher's)", flush=True)
    accumulation = cfg.grad_accum if cfg.grad_accum is not None else int(env_ga or 1)
    return cfg.mixed_precision, accumulation


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


__all__ = ["CheckpointError", "Run", "RunFolderLocked", "build_scheduler", "check_finite_loss", "launcher_settings"]
