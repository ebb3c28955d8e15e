"""Checkpoints and weights: atomic, verified, and refusing corrupt or foreign files."""


import pytest
import torch
from accelerate import Accelerator
from torch import nn

from genlab.train import (CheckpointError, list_checkpoints, load_checkpoint, load_weights, read_weights_metadata,
                          save_checkpoint, save_weights)


def _state(seed=0):
    torch.manual_seed(seed)
    acc = Accelerator(cpu=True)
    model = nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model, opt = acc.prepare(model, opt)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    return acc, model, opt


def test_save_and_load_round_trip(tmp_path):
    acc, model, opt = _state(0)
    path = save_checkpoint(acc, tmp_path, step=5)
    assert path.name == "step_00000005" and not list(tmp_path.glob(".tmp*"))
    acc2, model2, opt2 = _state(1)
    assert not torch.equal(model.weight, model2.weight)
    assert load_checkpoint(acc2, path) == 5
    assert torch.equal(model.weight, model2.weight)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])


def test_keeps_only_the_newest(tmp_path):
    acc, _, _ = _state()
    for step in (1, 2, 3):
        save_checkpoint(acc, tmp_path, step, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]


def test_incomplete_folders_are_ignored(tmp_path):
    acc, _, _ = _state()
    save_checkpoint(acc, tmp_path, 1)
    (tmp_path / ".tmp_step_00000002").mkdir()  # a save killed half-way
    (tmp_path / "step_00000003").mkdir()  # no manifest
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]


def test_truncated_or_altered_files_are_named(tmp_path):
    acc, model, _ = _state()
    path = save_checkpoint(acc, tmp_path, 1)
    before = model.weight.detach().clone()
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="model.safetensors' is corrupt or was altered"):
        load_checkpoint(acc, path)
    assert torch.equal(model.weight, before)  # nothing was loaded
    (path / "genlab.json").write_text("{")
    with pytest.raises(CheckpointError, match="manifest .* is corrupt"):
        load_checkpoint(acc, path)


def test_foreign_checkpoint_is_refused(tmp_path):
    acc, _, _ = _state()
    path = save_checkpoint(acc, tmp_path, 1)
    acc2 = Accelerator(cpu=True)
    other = nn.Linear(5, 3)
    other, opt = acc2.prepare(other, torch.optim.AdamW(other.parameters()))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(acc2, path)


def test_weights_round_trip_and_refusals(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    path = tmp_path / "w.safetensors"
    save_weights(model, path, "Toy", {"width": 3})
    assert read_weights_metadata(path) == {"kind": "Toy", "config": {"width": 3}}
    fresh = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert load_weights(fresh, path, "Toy") == {"width": 3}
    assert torch.equal(fresh[0].weight, model[0].weight)

    with pytest.raises(ValueError, match="holds a 'Toy', not a 'Other'"):
        load_weights(fresh, path, "Other")
    wider = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    before = wider[0].weight.detach().clone()
    with pytest.raises(ValueError, match="shape mismatch"):
        load_weights(wider, path, "Toy")
    assert torch.equal(wider[0].weight, before)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_weights(fresh, bad, "Toy")
    with pytest.raises(FileNotFoundError):
        load_weights(fresh, tmp_path / "none.safetensors", "Toy")
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(foreign))
    with pytest.raises(ValueError, match="not written by genlab"):
        load_weights(fresh, foreign, "Toy")
