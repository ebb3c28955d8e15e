"""train_fsq.py end to end on a tiny model: files written, resume is exact, a truncated checkpoint is
named, two processes, a diverging loss stops cleanly, and bad configs fail with a clear message."""

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from genlab.data import PhotoPatches
from genlab.tokenizers import ImageTokenizer
from genlab.train import verify_checkpoint
from tests.scripts.conftest import TWO_PROCESSES, assert_same_run, kill_after_checkpoint, run_script

TINY = ["--image_size", "16", "--channels", "8", "--batch_size", "4", "--eval_batch_size", "256", "--log_every", "1",
        "--eval_every", "0", "--grid_images", "8", "--warmup_steps", "0"]


def _weights(run_dir, step):
    return load_file(str(run_dir / "checkpoints" / f"step_{step:08d}" / "model.safetensors"))


def test_run_writes_everything_a_user_expects(tmp_path, script):
    run_script([script("train_fsq.py"), *TINY, "--max_steps", "4", "--ckpt_every", "2", "--name", "t",
                "--output_dir", str(tmp_path)], tmp_path)
    run = tmp_path / "t"
    results = json.loads((run / "results.json").read_text())
    assert {"psnr", "ssim", "usage", "perplexity", "codes_used", "seconds_per_step"} <= set(results)
    assert 0 < results["usage"] <= 1 and results["codebook_size"] == 1000
    assert (run / "config.yaml").exists() and list((run / "samples").glob("reconstructions_*.png"))
    assert list((run / "tb").rglob("events.out.tfevents*"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]

    tok = ImageTokenizer.from_pretrained(str(run / "weights" / "tokenizer.safetensors"))
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    ids = tok.encode(images)
    assert ids.shape == (2, 4, 4) and ids.dtype == torch.long
    assert tok.decode(ids).shape == (2, 3, 16, 16)


def test_killed_run_resumes_to_the_same_state_bitwise(tmp_path, script):
    common = [script("train_fsq.py"), *TINY, "--max_steps", "8", "--ckpt_every", "2", "--output_dir", str(tmp_path)]
    run_script(common + ["--name", "straight"], tmp_path)
    kill_after_checkpoint(common + ["--name", "split"], tmp_path, tmp_path / "split" / "checkpoints" / "step_00000002")
    proc = run_script(common + ["--name", "split", "--resume"], tmp_path)
    assert "resumed from" in proc.stdout
    assert_same_run(tmp_path / "straight", tmp_path / "split", 8)  # weights, optimizer, RNG states, metrics
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
             if '"train"' in line]
    assert steps == list(range(1, 9))  # records of the killed run after its checkpoint were dropped


def test_existing_run_is_never_overwritten_silently(tmp_path, script):
    args = [script("train_fsq.py"), *TINY, "--max_steps", "1", "--name", "r", "--output_dir", str(tmp_path)]
    run_script(args, tmp_path)
    proc = run_script(args, tmp_path, check=False)
    assert proc.returncode != 0 and "Pass --resume to continue it, --overwrite" in proc.stderr


def test_diverging_loss_stops_with_step_and_keeps_the_last_checkpoint(tmp_path, script):
    proc = run_script([script("train_fsq.py"), *TINY, "--max_steps", "5", "--ckpt_every", "1", "--lr", "1e30",
                       "--name", "nan", "--output_dir", str(tmp_path)], tmp_path, check=False)
    stopped = re.search(r"FloatingPointError: loss '\w+' became (nan|inf|-inf) at step (\d+)", proc.stderr)
    assert proc.returncode != 0 and stopped, proc.stderr[-2000:]
    last_good = int(stopped.group(2)) - 1
    checkpoints = sorted(p.name for p in (tmp_path / "nan" / "checkpoints").iterdir())
    assert checkpoints[-1] == f"step_{last_good:08d}" and verify_checkpoint(tmp_path / "nan" / "checkpoints" / checkpoints[-1])
    assert not (tmp_path / "nan" / "weights").exists() or not any((tmp_path / "nan" / "weights").iterdir())


def test_resume_from_a_truncated_checkpoint_names_the_file(tmp_path, script):
    args = [script("train_fsq.py"), *TINY, "--ckpt_every", "1", "--name", "r", "--output_dir", str(tmp_path)]
    run_script(args + ["--max_steps", "2"], tmp_path)
    weights = tmp_path / "r" / "checkpoints" / "step_00000002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    proc = run_script(args + ["--max_steps", "3", "--resume"], tmp_path, check=False)
    assert proc.returncode != 0 and "model.safetensors' is corrupt or was altered" in proc.stderr, proc.stderr[-2000:]
    assert "step_00000002" in proc.stderr and not (tmp_path / "r" / "checkpoints" / "step_00000003").exists()


@pytest.mark.parametrize("argv, message", [
    (["--levels", "[8,2]"], "every level must be an integer >= 3"),
    (["--downsample", "3"], "downsample=3 must be a power of two"),
    (["--image_channels", "1"], "set --image_channels 3"),
    (["--levls", "[8,5]"], "unknown config key 'levls'"),
])
def test_bad_configs_fail_clearly(tmp_path, script, argv, message):
    proc = run_script([script("train_fsq.py"), *TINY, "--max_steps", "1", "--output_dir", str(tmp_path), *argv],
                      tmp_path, check=False)
    assert proc.returncode != 0 and message in proc.stderr


@pytest.mark.slow
def test_two_processes_write_once_and_gather_metrics(tmp_path, script):
    run_script([script("train_fsq.py"), *TINY, "--max_steps", "2", "--ckpt_every", "2", "--name", "ddp",
                "--output_dir", str(tmp_path)], tmp_path, launcher=TWO_PROCESSES)
    run = tmp_path / "ddp"
    results = json.loads((run / "results.json").read_text())
    assert results["processes"] == 2
    assert results["images"] == len(PhotoPatches("test", 16))  # gathered from both processes, padding dropped
    ckpt = run / "checkpoints" / "step_00000002"
    assert (ckpt / "random_states_1.pkl").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in lines if '"split": "train"' in line]) == 2  # written once, not per process
