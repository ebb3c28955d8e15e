"""sample_gan.py on a tiny digits run: grid, one PNG per sample that fid.py reads, FD-digits-cnn with
its protocol."""

import importlib
import json

from tests.scripts.conftest import run_script

DIGITS = ["--dataset", "digits", "--arch", "dcgan", "--image_size", "8", "--width", "4", "--latent_dim", "8",
          "--batch_size", "8", "--n_critic", "1", "--eval_samples", "20", "--grid_images", "8", "--log_every", "1"]


def test_digits_samples_scores_and_fid_script(tmp_path, script, capsys):
    run_script([script("train_gan.py"), *DIGITS, "--objective", "fgan_js", "--max_steps", "2", "--name", "d",
                "--output_dir", str(tmp_path)], tmp_path)
    run = tmp_path / "d"
    results = json.loads((run / "results.json").read_text())
    assert {"fd_digits_cnn", "noise_floor", "precision", "recall"} <= set(results)
    assert (run / "samples" / "grid_00000002.png").exists()
    importlib.import_module("scripts.sample_gan").main(["--run", str(run), "--num", "40"])
    assert "FD-digits-cnn" in capsys.readouterr().out
    score = json.loads((run / "samples" / "score.json").read_text())
    assert score["metric"] == "FD-digits-cnn" and score["protocol"]["samples"] == 40 and "noise_floor" in score["extra"]
    images = sorted((run / "samples" / "images").glob("*.png"))
    assert [p.name for p in images[:2]] == ["00000.png", "00001.png"] and len(images) == 40
    assert (run / "samples" / "grid.png").exists()
    fid = importlib.import_module("scripts.fid").main(["--a", str(run)])  # reads what sample_gan.py wrote
    assert fid.metric == "FD-digits-cnn" and fid.protocol["samples"] == 40
