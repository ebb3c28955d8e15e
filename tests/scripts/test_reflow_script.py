"""reflow.py: couplings of a trained run (resumable, refusing other settings), 2-rectified flow
training on the fixed pairs, and k-step distillation (both with train_flow.py's loop)."""

import json

import pytest
from safetensors.torch import load_file

from genlab.flows import CouplingDataset
from scripts.reflow import main as reflow_main

SMALL = ["--max_steps", "2", "--ckpt_every", "2"]


def test_couplings_reflow_and_distillation(toy_run, tmp_path):
    pairs = tmp_path / "pairs"
    summary = reflow_main(["couplings", "--run", str(toy_run), "--out", str(pairs), "--num_pairs", "300", "--shard_size", "128",
                           "--solver", "rk4:4", "--seed", "3"])
    assert summary["shards"] == 3 and summary["generated"] == 3 and summary["nfe"] == 16
    manifest = json.loads((pairs / "couplings.json").read_text())
    assert manifest["method"] == "rk4" and manifest["steps"] == 4 and manifest["teacher"].endswith("flow_ema.safetensors")
    first = load_file(str(pairs / "pairs_00002.safetensors"))
    (pairs / "pairs_00002.safetensors").unlink()  # as if killed before the last shard
    again = reflow_main(["couplings", "--run", str(toy_run), "--out", str(pairs), "--num_pairs", "300", "--shard_size", "128",
                         "--solver", "rk4:4", "--seed", "3"])
    assert again["generated"] == 1
    second = load_file(str(pairs / "pairs_00002.safetensors"))
    assert all((first[k] == second[k]).all() for k in first)  # regenerated bitwise
    with pytest.raises(ValueError, match="other settings"):
        reflow_main(["couplings", "--run", str(toy_run), "--out", str(pairs), "--num_pairs", "300", "--solver", "euler:4"])
    assert len(CouplingDataset(pairs)) == 300

    out = ["--output_dir", str(tmp_path)]
    results = reflow_main(["reflow", "--run", str(toy_run), "--couplings", str(pairs), "--name", "rf2", *SMALL, *out])
    assert "euler:2" in results
    config = (tmp_path / "rf2" / "config.yaml").read_text()
    assert f"couplings: {pairs}" in config and "init_from:" in config and "flow_ema.safetensors" in config
    results = reflow_main(["distill", "--run", str(tmp_path / "rf2"), "--couplings", str(pairs), "--name", "d1", "--k", "1",
                           *SMALL, *out])
    assert list(results) == ["euler:1", "straightness"] and results["euler:1"]["nfe"] == 1
    config = (tmp_path / "d1" / "config.yaml").read_text()
    assert "time_distribution: discrete" in config and "time_steps: 1" in config


def test_reflow_needs_a_finished_run_and_a_name(tmp_path, toy_run):
    with pytest.raises(FileNotFoundError, match="not a finished train_flow.py run"):
        reflow_main(["couplings", "--run", str(tmp_path)])
    with pytest.raises(ValueError, match="reflow.py needs --name"):
        reflow_main(["reflow", "--run", str(toy_run), "--couplings", str(tmp_path)])  # --name is required
    with pytest.raises(SystemExit):
        reflow_main(["bogus"])
