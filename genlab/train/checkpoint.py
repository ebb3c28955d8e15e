"""Atomic, verified Accelerate checkpoints for resuming a run exactly where it stopped.

A checkpoint is a folder ``checkpoints/step_<8-digit step>/`` holding Accelerate's state (model,
optimizer, scheduler, RNG states of every process, registered objects) plus ``genlab.json``
with the step and a sha256 of every file. It is written under a temporary name and renamed by
the main process once every process has finished, so a folder with the final name is always
complete; before loading, every file is checked against its hash, so a truncated or altered
checkpoint fails with an error naming the file instead of loading half of it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator

from genlab.io import sha256_file, write_text_atomic

STEP_DIR = re.compile(r"^step_(\d{8})$")
MANIFEST = "genlab.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt, or belongs to another run."""


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``folder`` as ``(step, path)``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = STEP_DIR.match(p.name)
        if m and not p.is_dir():
            raise CheckpointError(f"{str(p)!r} is a file, not a checkpoint folder; move or delete it (checkpoints are "
                                  "folders step_<8 digits>/ that the run writes itself)")
        if m and (p / MANIFEST).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete what a killed writer leaves in a run folder: checkpoint folders not yet renamed
    (``checkpoints/.tmp_step_*``) and atomic-write temporaries (``.<name>.<random>.tmp``, ``.tmp*``)
    in the run folder and its ``checkpoints``, ``weights`` and ``samples`` folders. Call only while
    holding the run folder (:class:`genlab.train.lock.RunLock`), so no live writer owns them.
    Returns what was removed."""
    run_dir = Path(run_dir)
    removed = []
    for sub in (run_dir, run_dir / "checkpoints", run_dir / "weights", run_dir / "samples"):
        if not sub.is_dir():
            continue
        for p in sub.iterdir():
            if p.name.startswith(".tmp") or (p.name.startswith(".") and p.name.endswith(".tmp")):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                removed.append(p)
    return removed


def save_checkpoint(accelerator: Accelerator, folder: str | Path, step: int, keep: int = 2, extra: dict | None = None) -> Path:
    """Save the full training state at ``step``; every process must call this."""
    folder = Path(folder)
    final = folder / f"step_{step:08d}"
    tmp = folder / f".tmp_step_{step:08d}"
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"step": step, "num_processes": accelerator.num_processes, "files": files, **(extra or {})}
        write_text_atomic(tmp / MANIFEST, json.dumps(manifest, indent=1))
        if final.exists():  # a re-run of the same step (after resume): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in list_checkpoints(folder)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def verify_checkpoint(path: str | Path) -> dict:
    """Check every file of a checkpoint against its manifest; return the manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} has no {MANIFEST}: it is incomplete or not a genlab checkpoint")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        step = int(manifest["step"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint manifest {str(manifest_path)!r} is corrupt ({e})") from None
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} is missing its file {name!r}")
        if sha256_file(f) != digest:
            raise CheckpointError(f"checkpoint file {str(f)!r} is corrupt or was altered (sha256 does not match the manifest)")
    manifest["step"] = step
    return manifest


def load_checkpoint(accelerator: Accelerator, path: str | Path) -> int:
    """Verify and load a checkpoint into the prepared objects; return its step."""
    manifest = verify_checkpoint(path)
    if manifest.get("num_processes", accelerator.num_processes) != accelerator.num_processes:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written by {manifest['num_processes']} processes; this run has "
            f"{accelerator.num_processes}. Resume with the same number of processes."
        )
    try:
        accelerator.load_state(str(path))
    except Exception as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit this model or optimizer ({type(e).__name__}: {e})") from None
    return manifest["step"]
