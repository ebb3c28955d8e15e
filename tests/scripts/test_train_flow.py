"""train_flow.py end to end on tiny models: files written, bitwise resume after SIGKILL, a NaN stop,
two processes, bf16, bad configs and weights of another model."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from genlab.train import list_checkpoints, save_weights, verify_checkpoint
from scripts.train_flow import main as train_main
from tests.scripts.conftest import ROOT, assert_same_run, run_script
from tests.scripts.flow_runs import TOY

SCRIPT = str(ROOT / "scripts" / "train_flow.py")


def test_toy_run_writes_everything_a_user_expects(toy_run):
    results = json.loads((toy_run / "results.json").read_text())
    ev = results["eval"]
    assert ev["euler:2"]["nfe"] == 2 and ev["euler:2"]["samples"] == 64
    assert {"swd", "swd_noise_floor", "mmd", "modes_covered"} <= set(ev["euler:2"]) and ev["straightness"] >= 0
    assert results["weights"] == "ema" and results["processes"] == 1
    assert (toy_run / "samples" / "scatter_euler2_00000004.png").is_file()
    assert (toy_run / "weights" / "flow.safetensors").is_file() and (toy_run / "weights" / "flow_ema.safetensors").is_file()
    records = [json.loads(line) for line in (toy_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4]
    assert [r["step"] for r in records if r["split"] == "eval"] == [4]
    assert list((toy_run / "tb").rglob("events.out.tfevents*"))
    ckpt = toy_run / "checkpoints" / "step_00000004"
    assert (ckpt / "custom_checkpoint_0.pkl").is_file()  # the EMA travels with every checkpoint
    assert sorted(p.name for p in (toy_run / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]


def test_class_conditional_digits_in_bf16(digits_run):
    results = json.loads((digits_run / "results.json").read_text())
    ev = results["eval"]["euler:1"]
    assert ev["nfe"] == 2  # one Euler step, guided: conditional and unconditional evaluations
    assert {"fd_digits_cnn", "noise_floor", "accuracy", "precision", "recall"} <= set(ev)
    assert (digits_run / "samples" / "grid_euler1_00000002.png").is_file()
    assert "mixed_precision: bf16" in (digits_run / "config.yaml").read_text()


def _state(run, step):
    ckpt = run / "checkpoints" / f"step_{step:08d}"
    model = load_file(str(ckpt / "model.safetensors"))
    optimizer = torch.load(ckpt / "optimizer.bin", weights_only=True)
    ema = torch.load(ckpt / "custom_checkpoint_0.pkl", weights_only=False)
    return model, optimizer, ema


def _assert_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_equal(x, y)
    else:
        assert a == b


def test_sigkill_then_resume_is_bitwise_the_uninterrupted_run(tmp_path):
    args = [SCRIPT, *TOY, "--max_steps", "100", "--ckpt_every", "10", "--output_dir", str(tmp_path)]
    run_script(args + ["--name", "straight"], tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.Popen([sys.executable, *args, "--name", "killed"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 1800
    while not list_checkpoints(tmp_path / "killed" / "checkpoints") and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert list_checkpoints(tmp_path / "killed" / "checkpoints")[-1][0] < 100
    run_script(args + ["--name", "killed", "--resume"], tmp_path)
    _assert_equal(_state(tmp_path / "straight", 100), _state(tmp_path / "killed", 100))
    assert_same_run(tmp_path / "straight", tmp_path / "killed", 100)  # with EMA, RNG states and metrics.jsonl
    ema = [load_file(str(tmp_path / name / "weights" / "flow_ema.safetensors")) for name in ("straight", "killed")]
    _assert_equal(*ema)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError) as info:
        train_main([*TOY, "--max_steps", "6", "--ckpt_every", "1", "--lr", "1e30", "--grad_clip", "0", "--name", "nan",
                    "--output_dir", str(tmp_path)])
    message = str(info.value)
    assert "loss 'loss' became" in message and "at step" in message
    step = int(message.split("at step ")[1].split(";")[0])
    last = tmp_path / "nan" / "checkpoints" / f"step_{step - 1:08d}"
    assert verify_checkpoint(last)["step"] == step - 1  # complete and verified
    assert not (tmp_path / "nan" / "checkpoints" / f"step_{step:08d}").exists()


@pytest.mark.parametrize("argv, error, message", [
    (["--net", "mlp"], ValueError, "net='mlp' is for toy2d points"),
    (["--dataset", "toy2d", "--net", "unet"], ValueError, "set --net mlp"),
    (["--time_distribution", "beta"], ValueError, "time_distribution='beta' is not supported"),
    (["--eval_solvers", "[rk4]"], ValueError, "solver 'rk4' must be 'method:steps'"),
    (["--eval_solvers", "[euler:0]"], ValueError, "steps >= 1"),
    (["--p_uncond", "1.0"], ValueError, "'p_uncond'=1.0 must be in [0, 1)"),
    (["--class_conditional", "false", "--guidance_scale", "2"], ValueError, "needs class_conditional: true"),
    (["--widht", "8"], ValueError, "unknown config key 'widht'"),
    (["--heads", "3"], ValueError, "width=32 must split into heads=3"),
])
def test_bad_configs_fail_clearly(tmp_path, argv, error, message):
    base = ["--net", "dit", "--max_steps", "1", "--output_dir", str(tmp_path)]
    with pytest.raises(error) as info:
        train_main(base + argv)
    assert message in str(info.value)


def test_toy_data_has_no_labels_to_condition_on(tmp_path):
    with pytest.raises(ValueError, match="has no class labels; set --class_conditional false"):
        train_main([*TOY, "--class_conditional", "true", "--max_steps", "1", "--output_dir", str(tmp_path)])


def test_weights_of_another_model_are_refused(tmp_path, toy_run):
    other = tmp_path / "classifier.safetensors"
    save_weights(torch.nn.Linear(2, 2), other, "DigitsClassifier")
    with pytest.raises(ValueError, match="holds a 'DigitsClassifier', not a 'FlowVelocityNet'"):
        train_main([*TOY, "--init_from", str(other), "--max_steps", "1", "--name", "a", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="does not fit this FlowVelocityNet"):  # the toy MLP is 16 wide, this one 32
        train_main([*TOY, "--width", "32", "--init_from", str(toy_run / "weights" / "flow_ema.safetensors"),
                    "--max_steps", "1", "--name", "b", "--output_dir", str(tmp_path)])


@pytest.mark.slow
def test_two_processes_write_once_and_gather_samples(tmp_path):
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    run_script([SCRIPT, *TOY, "--max_steps", "2", "--ckpt_every", "2", "--eval_samples", "63", "--name", "ddp",
                "--output_dir", str(tmp_path)], tmp_path, launcher=launcher)
    run = tmp_path / "ddp"
    results = json.loads((run / "results.json").read_text())
    assert results["processes"] == 2
    assert results["eval"]["euler:2"]["samples"] == 63  # gathered from both processes, padding dropped
    assert (run / "checkpoints" / "step_00000002" / "random_states_1.pkl").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in lines if '"split": "train"' in line]) == 2  # written once, not per process
