"""sample_flow.py on tiny trained runs: grids per class, saved samples that fid.py reads, scores with
their protocol and measured NFE, the quality-vs-NFE plot, and clear errors."""

import json

import pytest
import torch

from scripts.fid import main as fid_main
from scripts.sample_flow import main as sample_main


def test_digits_grids_samples_and_score(digits_run, tmp_path):
    record = sample_main(["--run", str(digits_run), "--solver", "heun:2", "--num_samples", "30", "--guidance_scale", "1.5",
                          "--per_class", "2", "--out", str(tmp_path), "--compare", "--compare_solvers", "[euler:1, heun:1, dopri5]",
                          "--compare_samples", "20", "--rtol", "1e-3", "--atol", "1e-3"])
    assert record["metric"] == "FD-digits-cnn" and record["protocol"]["nfe"] == 8  # heun: 2 per step, x2 for guidance
    assert {"noise_floor", "accuracy", "precision", "recall"} <= set(record["extra"])
    proto = record["protocol"]
    assert proto["solver"] == "heun:2" and proto["guidance_scale"] == 1.5 and proto["flow_weights"] == "ema" and proto["seed"] == 0
    assert json.loads((tmp_path / "score.json").read_text())["value"] == pytest.approx(record["value"])
    images = sorted((tmp_path / "images").glob("*.png"))
    assert len(images) == 30 and images[0].name == "00000_0.png" and images[13].name == "00013_3.png"
    assert (tmp_path / "grid.png").is_file() and all((tmp_path / f"grid_class_{c}.png").is_file() for c in range(10))
    assert [row["nfe"] for row in record["compare"]][:2] == [2, 4] and record["compare"][2]["nfe"] > 4
    assert (tmp_path / "quality_vs_nfe.png").is_file()
    assert json.loads((tmp_path / "quality_vs_nfe.json").read_text())["protocol"]["samples"] == 20

    score = fid_main(["--a", str(tmp_path / "images"), "--b", "digits:train", "--image_size", "8"])
    assert score.metric == "FD-digits-cnn" and "accuracy" in score.extra  # labels read back from the file names


def test_toy_scatter_and_sliced_wasserstein(toy_run, tmp_path):
    record = sample_main(["--run", str(toy_run), "--solver", "euler:1", "--num_samples", "50", "--out", str(tmp_path),
                          "--weights", "raw"])
    assert record["metric"] == "sliced Wasserstein" and "swd_noise_floor" in record["extra"]
    assert record["protocol"]["nfe"] == 1 and record["protocol"]["flow_weights"] == "raw"
    assert (tmp_path / "scatter.png").is_file() and (tmp_path / "samples.safetensors").is_file()


def test_bad_input_fails_clearly(toy_run, tmp_path):
    other = tmp_path / "other.safetensors"
    from genlab.train import save_weights

    save_weights(torch.nn.Linear(2, 2), other, "ImageTokenizer")
    with pytest.raises(ValueError, match="holds a 'ImageTokenizer', not a 'FlowVelocityNet'"):
        sample_main(["--run", str(toy_run), "--weights", str(other), "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="solver method='rk5' is not supported"):
        sample_main(["--run", str(toy_run), "--solver", "rk5:4", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="steps >= 1"):
        sample_main(["--run", str(toy_run), "--solver", "euler:0", "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="not a train_flow.py run folder"):
        sample_main(["--run", str(tmp_path / "none")])
    with pytest.raises(ValueError, match="needs a class-conditional flow"):
        sample_main(["--run", str(toy_run), "--guidance_scale", "2", "--out", str(tmp_path)])
