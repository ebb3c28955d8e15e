"""Couplings (sharded, resumable, aligned), straightness, and reflow on the closed-form 1-D problem."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from genlab.flows import CouplingDataset, flow_matching_loss, generate_couplings, sample, sample_times, straightness
from genlab.flows.networks import VelocityMLP
from genlab.flows.reflow import COUPLINGS_MANIFEST, shard_name
from tests.flows.gaussian1d import MU, S, TARGET, v_reflow, v_star, x0

SETTINGS = dict(shard_size=40, batch_size=16, method="rk4", steps=16)


def shards(folder):
    return {p.name: load_file(str(p)) for p in sorted(folder.glob("pairs_*.safetensors"))}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert all(torch.equal(a[name][k], b[name][k]) for k in ("x0", "x1", "labels")), name


def test_couplings_of_the_exact_flow_are_its_monotone_map(tmp_path):
    summary = generate_couplings(v_star, tmp_path, 100, (1,), **SETTINGS)
    assert summary == {"shards": 3, "generated": 3, "pairs": 100, "nfe": 64}
    data = CouplingDataset(tmp_path)
    assert len(data) == 100 and json.loads((tmp_path / COUPLINGS_MANIFEST).read_text())["method"] == "rk4"
    assert torch.allclose(data.x1, MU + S * data.x0, atol=1e-3)  # ODE(x_0) = mu + s x_0


def test_shuffling_moves_pairs_never_one_side(tmp_path):
    generate_couplings(v_star, tmp_path, 100, (1,), **SETTINGS)
    data = CouplingDataset(tmp_path)
    g = torch.Generator().manual_seed(0)
    x0s, x1s, _ = next(iter(DataLoader(data, batch_size=100, shuffle=True, generator=g)))
    assert not torch.equal(x0s, data.x0)  # the order did change
    for a, b in zip(x0s, x1s):
        i = (data.x0 == a).all(1).nonzero().item()
        assert torch.equal(data.x1[i], b)


def test_generation_resumes_after_a_crash_bitwise(tmp_path):
    generate_couplings(v_star, tmp_path / "straight", 100, (1,), **SETTINGS)

    calls = {"n": 0}

    def crashing(x, t):
        calls["n"] += 1
        if calls["n"] > 250:  # a shard is 3 batches of 64 calls: die inside the second shard
            raise KeyboardInterrupt
        return v_star(x, t)

    with pytest.raises(KeyboardInterrupt):
        generate_couplings(crashing, tmp_path / "split", 100, (1,), **SETTINGS)
    assert len(shards(tmp_path / "split")) == 1  # the finished shard is on disk, nothing half-written
    assert not list((tmp_path / "split").glob(".*tmp"))
    summary = generate_couplings(v_star, tmp_path / "split", 100, (1,), **SETTINGS)
    assert summary["generated"] == 2
    assert_same(shards(tmp_path / "straight"), shards(tmp_path / "split"))


def test_processes_split_the_shards_and_reproduce_one_process(tmp_path):
    generate_couplings(v_star, tmp_path / "one", 100, (1,), **SETTINGS)
    for rank in (1, 0):
        generate_couplings(v_star, tmp_path / "two", 100, (1,), rank=rank, world_size=2, **SETTINGS)
    assert_same(shards(tmp_path / "one"), shards(tmp_path / "two"))


def test_class_conditional_couplings_store_their_labels(tmp_path):
    def model(x, t, labels):
        return labels[:, None].to(x.dtype).expand_as(x)  # moves each sample by its label

    generate_couplings(model, tmp_path, 30, (1,), num_classes=3, shard_size=30, batch_size=30, method="euler", steps=1)
    data = CouplingDataset(tmp_path)
    assert set(data.labels.tolist()) == {0, 1, 2} and data.num_classes == 3
    assert torch.allclose(data.x1 - data.x0, data.labels[:, None].float())


def test_other_settings_incomplete_or_broken_folders_fail_clearly(tmp_path):
    generate_couplings(v_star, tmp_path, 100, (1,), **SETTINGS)
    with pytest.raises(ValueError, match="other settings.*steps: folder 16 vs now 8"):
        generate_couplings(v_star, tmp_path, 100, (1,), **{**SETTINGS, "steps": 8})
    (tmp_path / shard_name(1)).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="pairs_00001.safetensors.*unreadable"):
        CouplingDataset(tmp_path)
    (tmp_path / shard_name(1)).unlink()
    with pytest.raises(ValueError, match="incomplete: 1 of 3 shards missing"):
        CouplingDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a coupling folder"):
        CouplingDataset(tmp_path / "nothing")
    with pytest.raises(ValueError, match="num_pairs=0"):
        generate_couplings(v_star, tmp_path / "x", 0, (1,))


def test_straightness_is_zero_for_the_reflowed_field_only():
    z0 = torch.randn(256, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert straightness(v_reflow, z0, steps=50, method="rk4") < 1e-12  # straight lines
    curved = straightness(v_star, z0, steps=200)
    assert curved > 0.5  # the independent coupling's field bends
    assert straightness(v_star, z0, steps=100, method="rk4") == pytest.approx(curved, rel=0.05)


def test_training_on_straight_pairs_makes_one_euler_step_good():
    """A 2-rectified flow in miniature: fit the deterministic coupling x1 = mu + s x0 (what reflow of
    the exact 1-RF produces) and compare one Euler step with the 1-RF's mean collapse."""
    torch.manual_seed(0)
    net = VelocityMLP(dim=1, width=32, depth=2)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        z0 = torch.randn(256, 1, generator=g)
        loss = flow_matching_loss(net, z0, MU + S * z0, sample_times(256, generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    one_step = sample(net, x0(torch.float32), 1, "euler").samples.flatten()
    assert one_step.tolist() == pytest.approx(TARGET, abs=0.2)
    assert sample(v_star, x0(), 1, "euler").samples.flatten().tolist() == [3, 3, 3]  # 1-RF: every x0 to the mean
