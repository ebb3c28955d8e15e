"""train_gan.py end to end on tiny models: files written (under bf16), resume after SIGKILL is bitwise
exact, two processes, a diverging run stops cleanly, bad configs and foreign weights fail clearly."""

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.scripts.conftest import ROOT, assert_same_run, run_script

TOY = ["--dataset", "25gaussians", "--width", "16", "--depth", "2", "--batch_size", "16", "--n_critic", "2",
       "--toy_points", "2000", "--eval_samples", "200", "--log_every", "1", "--lr", "1e-3"]


def load_script(name):
    return importlib.import_module(f"scripts.{name}")


def tensors(obj) -> list:
    """Every tensor in a nested state dict, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors(v)]
    return []


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A 4-step ReFlow-critic run with the proximal generator under bf16 autocast, EMA, warm-up, lr decay and
    gradient clipping."""
    out = tmp_path_factory.mktemp("gan")
    script = str(ROOT / "scripts" / "train_gan.py")
    run_script([script, *TOY, "--objective", "reflow", "--generator_loss", "proximal", "--mixed_precision", "bf16",
                "--ema_decay", "0.9", "--schedule", "linear", "--warmup_steps", "4", "--grad_clip", "1.0", "--max_steps", "4", "--ckpt_every", "2", "--eval_every", "2",
                "--name", "t", "--output_dir", str(out)], out)
    return out / "t"


def test_toy_run_writes_everything_a_user_expects(toy_run):
    results = json.loads((toy_run / "results.json").read_text())
    assert {"modes_covered", "high_quality", "swd", "swd_noise_floor", "mmd", "seconds_per_step"} <= set(results)
    assert results["samples"] == 200 and results["objective"] == "reflow"
    assert sorted(p.name for p in (toy_run / "samples").iterdir()) == ["scatter_00000002.png", "scatter_00000004.png"]
    assert sorted(p.name for p in (toy_run / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]
    assert (toy_run / "checkpoints" / "step_00000004" / "custom_checkpoint_0.pkl").exists()  # the EMA generator
    train = [r for r in records(toy_run) if r["split"] == "train"]
    assert {"critic_loss", "generator_loss", "wasserstein", "gp", "lr"} <= set(train[0])
    from genlab.train import lr_factor

    # the shared schedule, advanced once per step: warm-up over 4 steps times linear decay to 0
    assert [r["lr"] for r in train] == pytest.approx([1e-3 * lr_factor(k, 4, 4, "linear") for k in (1, 2, 3, 4)])
    assert [r["step"] for r in records(toy_run) if r["split"] == "eval"] == [2, 4]
    assert list((toy_run / "tb").rglob("events.out.tfevents*"))


def test_resume_after_sigkill_is_bitwise_exact(tmp_path, script):
    common = [script("train_gan.py"), *TOY, "--objective", "wgan_gp", "--ckpt_every", "3", "--keep_checkpoints", "10",
              "--ema_decay", "0.5", "--max_steps", "9", "--output_dir", str(tmp_path)]
    run_script(common + ["--name", "straight", "--eval_every", "0"], tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    # evaluations after every step slow the run down so it is killed between its checkpoints; they draw
    # no training randomness, so the uninterrupted run above needs none
    proc = subprocess.Popen([sys.executable, *common, "--name", "killed", "--eval_every", "1", "--eval_samples", "1500"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 1800
    while not (checkpoints / "step_00000003").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "results.json").exists(), "the run finished before it could be killed"
    run_script(common + ["--name", "killed", "--resume", "--eval_every", "0", "--eval_samples", "1500"], tmp_path)
    # weights, both Adams, the EMA generator, the RNG states and the training records, bit for bit
    assert_same_run(tmp_path / "straight", tmp_path / "killed", 9, splits=("train",))
    steps = [r["step"] for r in records(tmp_path / "killed") if r["split"] == "train"]
    assert steps == list(range(1, 10))  # records after the checkpoint were dropped and written again


def test_diverging_run_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, script):
    """KL's exp(V − 1) overflows once a huge learning rate has blown the critic up (step 2)."""
    proc = run_script([script("train_gan.py"), *TOY, "--objective", "fgan_kl", "--lr", "1e4", "--n_critic", "1",
                       "--max_steps", "50", "--ckpt_every", "1", "--eval_every", "0", "--name", "nan",
                       "--output_dir", str(tmp_path)], tmp_path, check=False)
    assert proc.returncode != 0
    assert "loss 'critic_loss' became inf at step 2; stopping. The last good checkpoint on disk is untouched" in proc.stderr
    saved = sorted((tmp_path / "nan" / "checkpoints").iterdir())
    assert [p.name for p in saved] == ["step_00000001"]
    for name in ("model.safetensors", "model_1.safetensors"):
        assert all(torch.isfinite(v).all() for v in load_file(str(saved[0] / name)).values())
    assert not (tmp_path / "nan" / "weights" / "generator.safetensors").exists()


@pytest.mark.parametrize("argv, message", [
    (["--objective", "fgan_chi"], "objective='fgan_chi' is not supported"),
    (["--objectve", "wgan_gp"], "unknown config key 'objectve'"),
    (["--objective", "fgan_kl", "--generator_loss", "proximal"], "generator_loss='proximal' needs a potential critic"),
    (["--objective", "fgan_kl", "--gp_weight", "1"], "gp_weight=1.0 only applies to 'wgan_gp' and 'reflow'"),
    (["--data_shape", "[1, 16, 16]"], "does not match dataset='25gaussians'"),
    (["--dataset", "digits", "--arch", "mlp"], "does not fit arch='mlp'"),
    (["--grad_accum", "2"], "'grad_accum'=2 is not supported by train_gan.py"),
    (["--betas", "[0.5]"], "'betas'=[0.5] must be two numbers"),
    (["--ema_decay", "1"], "'ema_decay'=1.0 must be in [0, 1)"),
])
def test_bad_configs_fail_clearly(tmp_path, argv, message):
    with pytest.raises(ValueError) as err:
        load_script("train_gan").main([*TOY, "--max_steps", "1", "--output_dir", str(tmp_path), *argv])
    assert message in str(err.value)
    assert not (tmp_path / "gan").exists()


def test_sample_gan_on_2d_data(toy_run, tmp_path):
    result = load_script("sample_gan").main(["--run", str(toy_run), "--num", "300", "--out", str(tmp_path)])
    score = json.loads((tmp_path / "samples" / "score.json").read_text())
    assert score == result and score["samples"] == 300 and score["num_modes"] == 25 and "swd" in score
    assert (tmp_path / "samples" / "scatter.png").exists()


def test_weights_of_another_model_fail_clearly(toy_run, tmp_path, script):
    proc = run_script([script("sample_gan.py"), "--weights", str(toy_run / "weights" / "critic.safetensors"),
                       "--out", str(tmp_path)], tmp_path, check=False)
    assert proc.returncode != 0 and "holds a 'GANCritic', not a 'GANGenerator'" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(ValueError, match="holds a 'DigitsClassifier', not a 'GANGenerator'"):
        load_script("sample_gan").main(["--weights", str(ROOT / "genlab" / "assets" / "digits_classifier.safetensors"), "--out", str(tmp_path)])
    copy = tmp_path / "t"
    shutil.copytree(toy_run, copy)
    where = ["--name", "t", "--resume", "--output_dir", str(tmp_path)]
    with pytest.raises(ValueError, match=r"changes \['width'\] \(width: saved 16, given 32\)"):
        load_script("train_gan").main([*TOY, "--objective", "reflow", "--max_steps", "6", "--width", "32", *where])
    config = copy / "config.yaml"  # a config that no longer matches its checkpoint: networks of another width
    config.write_text(config.read_text().replace("width: 16", "width: 32"))
    proc = run_script([script("train_gan.py"), "--max_steps", "6", *where], tmp_path, check=False)
    assert proc.returncode != 0 and "does not fit this model or optimizer" in proc.stderr


@pytest.mark.slow
def test_two_processes_write_once_and_gather_samples(tmp_path, script):
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    run_script([script("train_gan.py"), *TOY, "--objective", "wgan_gp", "--max_steps", "2", "--ckpt_every", "2",
                "--eval_samples", "101", "--name", "ddp", "--output_dir", str(tmp_path)], tmp_path, launcher=launcher)
    run = tmp_path / "ddp"
    results = json.loads((run / "results.json").read_text())
    assert results["processes"] == 2 and results["samples"] == 101  # gathered from both processes, padding dropped
    assert (run / "checkpoints" / "step_00000002" / "random_states_1.pkl").exists()
    assert [r["step"] for r in records(run) if r["split"] == "train"] == [1, 2]  # written once, not per process
