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


def run_script(args: list[str], cwd: Path, timeout: int = 1800, launcher: list[str] | None = None,
               check: bool = True) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable]) + args
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def kill_after_checkpoint(args: list[str], cwd: Path, checkpoint: Path, timeout: int = 1800,
                          launcher: list[str] | None = None) -> None:
    """Start a training script and SIGKILL it (with ``launcher``: the launcher and all its workers, as
    ``kill -9`` of the process group does) as soon as ``checkpoint`` (a folder) is complete.

    While it runs, no folder under ``checkpoint.parent`` may ever carry a final ``step_*`` name
    without its manifest: a checkpoint is either absent or whole. The timeout only guards against a
    hung run; it is generous so that a loaded machine does not fail the test.
    """
    proc = subprocess.Popen([*(launcher or [sys.executable]), *args], cwd=cwd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
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
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


def _load_any(path: Path):
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    import torch
    return torch.load(path, weights_only=False)


def _assert_equal(a, b, where: str) -> None:
    import numpy as np
    import torch
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        for k in a:
            _assert_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where} differs in length"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def metric_records(run: Path, splits: tuple[str, ...] | None = None) -> list[dict]:
    """The records of ``run/metrics.jsonl`` (of ``splits``, default all) without their wall-clock times."""
    import json
    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]
    return [r for r in records if splits is None or r["split"] in splits]


def assert_same_run(a: Path, b: Path, step: int, splits: tuple[str, ...] | None = None) -> None:
    """Runs ``a`` and ``b`` hold the same state at ``step`` bit for bit: every file of the checkpoint
    (weights and buffers, optimizer, scheduler, the RNG states of every process, registered objects such
    as an EMA or a data order; compared as values) and every record of ``metrics.jsonl`` but its time."""
    ca, cb = (r / "checkpoints" / f"step_{step:08d}" for r in (a, b))
    names = sorted(p.name for p in ca.iterdir() if p.name != "genlab.json")
    assert names == sorted(p.name for p in cb.iterdir() if p.name != "genlab.json")
    assert any(n.startswith("random_states") for n in names) and any(n.startswith("optimizer") for n in names)
    for name in names:
        _assert_equal(_load_any(ca / name), _load_any(cb / name), f"{ca.parent.parent.name} vs {cb.parent.parent.name}: {name}")
    ra, rb = metric_records(a, splits), metric_records(b, splits)
    assert ra == rb, f"metrics.jsonl differ:\n{ra}\n{rb}"


@pytest.fixture
def script():
    return lambda name: str(ROOT / "scripts" / name)


from tests.scripts.flow_runs import digits_run, toy_run  # noqa: E402,F401 (session fixtures: tiny trained flows)
