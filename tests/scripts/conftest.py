"""Helpers for running the training scripts as a user would, in a subprocess."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TWO_PROCESSES = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                 "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def run_script(args: list[str], cwd: Path, timeout: int = 300, launcher: list[str] | None = None,
               check: bool = True) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable]) + args
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def kill_after_checkpoint(args: list[str], cwd: Path, checkpoint: Path, timeout: int = 300) -> None:
    """Start a training script and SIGKILL it as soon as ``checkpoint`` (a folder) is complete.

    While it runs, no folder under ``checkpoint.parent`` may ever carry a final ``step_*`` name
    without its manifest: a checkpoint is either absent or whole.
    """
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    try:
        while not (checkpoint / "genlab.json").exists():
            for folder in checkpoint.parent.glob("step_*"):
                assert (folder / "genlab.json").exists() or not folder.exists(), f"partial checkpoint {folder} is visible"
            if proc.poll() is not None:
                raise AssertionError(f"the run ended ({proc.returncode}) before {checkpoint} appeared:\n{proc.stderr.read()[-5000:]}")
            if time.time() > deadline:
                raise AssertionError(f"{checkpoint} did not appear within {timeout} s")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


@pytest.fixture
def script():
    return lambda name: str(ROOT / "scripts" / name)
