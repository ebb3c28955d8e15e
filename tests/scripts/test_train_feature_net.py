"""train_feature_net.py: the default run reproduces the shipped classifier bit for bit; a SIGKILLed run
resumes to the same weights, also from mid-epoch; a truncated checkpoint is named; two processes
end with the single-process weights and write once."""

import json

import pytest
import torch
from safetensors.torch import load_file

from genlab.metrics.features import DEFAULT_WEIGHTS
from tests.scripts.conftest import TWO_PROCESSES, assert_same_run, kill_after_checkpoint, run_script

SHORT = ["--epochs", "6", "--ckpt_every", "10", "--keep_checkpoints", "20"]


def _same(a, b) -> bool:
    a, b = load_file(str(a)), load_file(str(b))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_default_run_reproduces_the_shipped_classifier(tmp_path, script):
    run_script([script("train_feature_net.py"), "--out", str(tmp_path / "net.safetensors"), "--output_dir", str(tmp_path)],
               tmp_path)
    assert _same(tmp_path / "net.safetensors", DEFAULT_WEIGHTS)
    assert json.loads((tmp_path / "digits_classifier" / "results.json").read_text())["test_accuracy"] >= 0.97


def test_killed_run_resumes_to_the_same_weights(tmp_path, script):
    def args(name):
        return [script("train_feature_net.py"), *SHORT, "--name", name, "--out", str(tmp_path / f"{name}.safetensors"),
                "--output_dir", str(tmp_path)]

    run_script(args("straight"), tmp_path)
    kill_after_checkpoint(args("split"), tmp_path, tmp_path / "split" / "checkpoints" / "step_00000010")  # mid-epoch
    assert not (tmp_path / "split.safetensors").exists()
    proc = run_script(args("split") + ["--resume"], tmp_path)
    assert "resumed from" in proc.stdout
    assert _same(tmp_path / "straight.safetensors", tmp_path / "split.safetensors")
    assert_same_run(tmp_path / "straight", tmp_path / "split", 132)  # optimizer, data order, RNG states, metrics


def test_truncated_checkpoint_is_named(tmp_path, script):
    args = [script("train_feature_net.py"), "--epochs", "1", "--ckpt_every", "10", "--name", "r",
            "--out", str(tmp_path / "r.safetensors"), "--output_dir", str(tmp_path)]
    run_script(args, tmp_path)
    newest = sorted((tmp_path / "r" / "checkpoints").iterdir())[-1] / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    proc = run_script(args + ["--epochs", "2", "--resume"], tmp_path, check=False)
    assert proc.returncode != 0 and "model.safetensors' is corrupt or was altered" in proc.stderr, proc.stderr[-2000:]


def test_bad_config_fails_clearly(tmp_path, script):
    proc = run_script([script("train_feature_net.py"), "--epochs", "0", "--output_dir", str(tmp_path)], tmp_path, check=False)
    assert proc.returncode != 0 and "config key 'epochs'=0 must be >= 1" in proc.stderr
    assert not (tmp_path / "digits_classifier").exists()


@pytest.mark.slow
def test_two_processes_end_with_the_single_process_weights(tmp_path, script):
    def args(name):
        return [script("train_feature_net.py"), "--epochs", "2", "--name", name, "--out", str(tmp_path / f"{name}.safetensors"),
                "--output_dir", str(tmp_path), "--cpu_threads", "1"]  # one thread each: the same float reductions

    run_script(args("one"), tmp_path)
    run_script(args("two"), tmp_path, launcher=TWO_PROCESSES)
    assert json.loads((tmp_path / "two" / "results.json").read_text())["processes"] == 2
    assert _same(tmp_path / "one.safetensors", tmp_path / "two.safetensors")
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((tmp_path / "one" / "metrics.jsonl").read_text().splitlines())  # written once
