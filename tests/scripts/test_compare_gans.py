"""compare_gans.py: a tiny end-to-end comparison, its table reporting diverged runs honestly, and the
digits arguments it passes to train_gan.py."""

import argparse
import importlib
import json

from genlab.train import parse_config

compare = importlib.import_module("scripts.compare_gans")


def test_tiny_comparison_writes_the_table_and_figure(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["--objectives", "fgan_gan:g_mode=saddle", "--seeds", "0", "--toy_steps", "2", "--toy_width", "8",
            "--toy_samples", "200", "--toy_batch", "16", "--digits_steps", "0", "--n_critic", "1", "--out", str(out)]
    compare.main(args)
    table = (out / "comparison.md").read_text()
    assert "| `fgan_gan:g_mode=saddle` |" in table and "2 generator steps x 1 critic steps" in table
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["toy"]["fgan_gan:g_mode=saddle"]["per_seed"]
    assert (out / "toy_samples.png").exists()
    config = (out / "runs" / "toy_fgan_gan_g_modesaddle_s0" / "config.yaml").read_text()
    assert "g_mode: saddle" in config
    assert "done in" in capsys.readouterr().out
    compare.main(args)  # finished runs are reused, not trained again
    assert "done in" not in capsys.readouterr().out


def test_table_reports_diverged_runs_and_the_bar():
    ok = {"modes_covered": 25, "high_quality": 0.9, "swd": 0.1}
    table, summary = compare.toy_table({"wgan_gp": [ok, ok, {"failed": "loss became nan at step 7"}],
                                        "fgan_kl": [{"failed": "x"}], "reflow": [ok, dict(ok, high_quality=0.5), ok]})
    assert "| `wgan_gp` | 25 | 90.0% | 0.100 | 25 / 90%, 25 / 90%, 1 diverged | **no** |" in table
    assert "| `fgan_kl` | — | — | — | all diverged |" in table
    assert "| `reflow` | 25 | 90.0% | 0.100 | 25 / 90%, 25 / 50%, 25 / 90% | yes |" in table
    assert summary["wgan_gp"]["failed_runs"] == 1
    digits, _ = compare.digits_table({"fgan_js": [{"fd_digits_cnn": 9.5, "noise_floor": 1.25, "precision": 0.5, "recall": 0.25}],
                                      "fgan_kl": [{"failed": "x"}]})
    assert "| `fgan_js` | 9.50 | 1.25 | 0.50 | 0.25 |" in digits and "| `fgan_kl` | diverged |" in digits


def test_protocol_arguments_are_valid_train_gan_configs():
    train_gan = importlib.import_module("scripts.train_gan")
    args = argparse.Namespace(lr=2e-4, n_critic=2, toy_width=128, toy_batch=128, toy_steps=10,
                                                          toy_samples=2500, digits_width=16, digits_steps=10)
    for entry in compare.DEFAULT_ENTRIES:
        for argv in (compare.toy_args(args, entry, 0), compare.digits_args(args, entry, 0)):
            cfg = parse_config(train_gan.GANTrainConfig, argv)
            assert cfg.objective == entry.partition(":")[0] and cfg.schedule == "linear"
    assert parse_config(train_gan.GANTrainConfig, compare.digits_args(args, "wgan_gp", 0)).data_shape == [1, 8, 8]
