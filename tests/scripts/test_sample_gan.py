"""sample_gan.py on a tiny digits run: grid, one PNG per sample that fid.py reads, FD-digits-cnn with
its protocol; and compare_gans.py's table from two tiny runs."""

import json

from tests.scripts.conftest import run_script

DIGITS = ["--dataset", "digits", "--arch", "dcgan", "--image_size", "8", "--width", "4", "--latent_dim", "8",
          "--batch_size", "8", "--n_critic", "1", "--eval_samples", "20", "--grid_images", "8", "--log_every", "1"]


def test_digits_samples_scores_and_fid_script(tmp_path, script):
    run_script([script("train_gan.py"), *DIGITS, "--objective", "fgan_js", "--max_steps", "2", "--name", "d",
                "--output_dir", str(tmp_path)], tmp_path)
    run = tmp_path / "d"
    results = json.loads((run / "results.json").read_text())
    assert {"fd_digits_cnn", "noise_floor", "precision", "recall"} <= set(results)
    assert (run / "samples" / "grid_00000002.png").exists()
    proc = run_script([script("sample_gan.py"), "--run", str(run), "--num", "40"], tmp_path)
    assert "FD-digits-cnn" in proc.stdout and "noise_floor" in proc.stdout
    score = json.loads((run / "samples" / "score.json").read_text())
    assert score["metric"] == "FD-digits-cnn" and score["protocol"]["samples"] == 40
    images = sorted((run / "samples" / "images").glob("*.png"))
    assert [p.name for p in images[:2]] == ["00000.png", "00001.png"] and len(images) == 40
    assert (run / "samples" / "grid.png").exists()
    proc = run_script([script("fid.py"), "--a", str(run)], tmp_path)  # reads what sample_gan.py wrote
    assert "FD-digits-cnn" in proc.stdout and "samples: 40" in proc.stdout


def test_toy_samples(tmp_path, script):
    run_script([script("train_gan.py"), "--dataset", "8gaussians", "--width", "8", "--depth", "1", "--batch_size", "8",
                "--n_critic", "1", "--toy_points", "500", "--eval_samples", "50", "--max_steps", "1", "--name", "t",
                "--output_dir", str(tmp_path)], tmp_path)
    proc = run_script([script("sample_gan.py"), "--run", str(tmp_path / "t"), "--num", "300"], tmp_path)
    score = json.loads((tmp_path / "t" / "samples" / "score.json").read_text())
    assert score["samples"] == 300 and score["num_modes"] == 8 and "swd" in score and "modes_covered" in proc.stdout
    assert (tmp_path / "t" / "samples" / "scatter.png").exists()
