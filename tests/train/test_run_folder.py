"""The run folder across kills: one process at a time, no stale temporaries, metrics.jsonl repaired
or named, no duplicate records, no checkpoint of non-finite weights, rates float32 can hold."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from genlab.train import CheckpointError, Run, TrainConfig, list_checkpoints, parse_config
from genlab.train.finite import check_finite_loss, check_finite_state
from genlab.train.lock import LOCK_NAME, RunFolderLocked, RunLock
from genlab.train.metrics_file import read_records, truncate_records


def _cfg(tmp_path, **kw):
    return TrainConfig(name="r", output_dir=str(tmp_path), max_steps=4, **kw)


def _run(tmp_path, **kw):
    run = Run(_cfg(tmp_path, **kw), tensorboard=False)
    model = nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model, opt = run.accelerator.prepare(model, opt)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return run, model


def _metrics(tmp_path, steps):
    (tmp_path / "r").mkdir(parents=True, exist_ok=True)
    (tmp_path / "r" / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "split": "train"}) + "\n" for s in steps))


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_process_on_the_same_folder_is_refused_with_the_holders_pid(tmp_path):
    (tmp_path / "r").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "r" / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # another process's run
        with pytest.raises(RunFolderLocked) as err:
            Run(_cfg(tmp_path, resume=True), tensorboard=False)
        assert str(tmp_path / "r") in str(err.value) and f"in use by process {holder.pid}" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    run, _ = _run(tmp_path, resume=True)  # the holder is gone: the folder is free again
    run.finish()
    RunLock(tmp_path / "r").acquire().release()  # finish() released it too


def test_a_run_that_failed_in_this_process_does_not_block_the_next(tmp_path):
    _run(tmp_path)  # abandoned without finish(), as by an exception after the start
    run, _ = _run(tmp_path, overwrite=True)
    run.finish()


def test_temporaries_of_a_killed_save_are_removed_on_start(tmp_path, capsys):
    weights, ckpts = tmp_path / "r" / "weights", tmp_path / "r" / "checkpoints"
    stale = [weights / ".tokenizer.safetensors.ab12cd.tmp", tmp_path / "r" / ".tmpx1y2", ckpts / ".tmp_step_00000004"]
    ckpts.mkdir(parents=True)
    weights.mkdir()
    stale[0].write_bytes(b"half")
    stale[1].write_text("x")
    (stale[2] / "model.safetensors").parent.mkdir()
    (stale[2] / "model.safetensors").write_bytes(b"half")
    keep = weights / "tokenizer.safetensors"
    keep.write_bytes(b"kept")
    run, _ = _run(tmp_path, resume=True)
    assert not any(p.exists() for p in stale) and keep.exists()
    assert "left by a run killed while writing it" in capsys.readouterr().out
    run.finish()


def test_partial_last_line_is_dropped_and_other_damage_is_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')  # killed mid-write
    said = []
    assert [s for s, _ in read_records(path, said.append)] == [1, 2]
    assert "dropped its partial last line 3" in said[0]
    truncate_records(path, 5, said.append)
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
    path.write_text('{"step": 1}\ngarbage\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl' line 2 is not a metrics record"):
        truncate_records(path, 5)
    path.write_text('{"step": 1}\n{"split": "train"}\n')
    with pytest.raises(ValueError, match="line 2 is not a metrics record.*KeyError"):
        read_records(path)


def test_a_file_named_like_a_checkpoint_is_reported(tmp_path):
    (tmp_path / "step_00000004").write_text("not a folder")
    with pytest.raises(CheckpointError, match="step_00000004' is a file, not a checkpoint folder"):
        list_checkpoints(tmp_path)


def test_resume_without_a_checkpoint_drops_the_earlier_records(tmp_path):
    _metrics(tmp_path, [1, 2, 3, 4])
    (tmp_path / "r" / "config.yaml").write_text("name: r\n")
    run, _ = _run(tmp_path, resume=True)
    assert run.maybe_resume() == 0
    metrics = tmp_path / "r" / "metrics.jsonl"  # a start that never checkpointed leaves nothing behind
    assert not metrics.exists() or metrics.read_text() == ""
    run.finish()


def test_resume_at_the_last_step_writes_no_second_record(tmp_path):
    run, _ = _run(tmp_path)
    for step in range(1, 5):
        run.log(step, {"loss": 1.0})
    run.save_checkpoint(4)
    run.log(4, {"psnr": 20.0}, split="test")
    run.finish()
    before = (tmp_path / "r" / "metrics.jsonl").read_text()
    run, _ = _run(tmp_path, resume=True)
    assert run.maybe_resume() == 4
    run.log(4, {"psnr": 20.0}, split="test")  # a script evaluating what it loaded
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == before
    run.log(5, {"loss": 1.0})
    assert (tmp_path / "r" / "metrics.jsonl").read_text().count("\n") == before.count("\n") + 1
    run.finish()


def test_non_finite_weights_or_optimizer_state_are_never_checkpointed(tmp_path):
    run, model = _run(tmp_path)
    run.save_checkpoint(1)
    with torch.no_grad():
        model.bias[1] = float("inf")
    with pytest.raises(FloatingPointError, match=r"tensor 'bias' holds NaN or Inf at step 2; stopping before its "
                                                 r"checkpoint.*last good checkpoint on disk is untouched"):
        run.save_checkpoint(2)
    with torch.no_grad():
        model.bias[1] = 0.0
    opt = run.accelerator._optimizers[0]
    opt.optimizer.state[next(iter(opt.optimizer.state))]["exp_avg_sq"][0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"optimizer 0 state 'exp_avg_sq' of parameter '\w+' holds NaN"):
        run.save_checkpoint(3)
    assert [s for s, _ in list_checkpoints(run.checkpoint_dir)] == [1]
    run.finish()


def test_finite_checks_name_what_failed():
    check_finite_loss(1, a=torch.tensor(1.0), b=torch.ones(3))
    with pytest.raises(FloatingPointError, match="loss 'b' became nan at step 7"):
        check_finite_loss(7, a=torch.tensor(1.0), b=torch.tensor([1.0, float("nan")]))
    check_finite_state(1, [("w", torch.ones(2)), ("i", torch.arange(3))])
    with pytest.raises(FloatingPointError, match="^second holds NaN or Inf at step 2"):
        check_finite_state(2, [("first", torch.ones(2)), ("second", torch.tensor([float("-inf")]))])


@pytest.mark.parametrize("argv", [["--lr", "1e39"], ["--lr", "nan"], ["--weight_decay", "inf"], ["--grad_clip", "-1"]])
def test_rates_that_float32_cannot_hold_are_refused(argv):
    with pytest.raises(ValueError, match=f"config key '{argv[0][2:]}'=.* must be a finite number >= 0 that float32 can hold"):
        parse_config(TrainConfig, argv)
