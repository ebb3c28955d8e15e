"""compare_tokenizers.py: the runs it plans (same data and budget, paper level sets, VQ with and
without dead-code reset), reuse of finished runs, the table, and bad arguments."""

import json

import pytest

from genlab.train import dump_config, parse_config
from scripts import compare_tokenizers
from genlab.train.tokenizer import TokenizerTrainConfig, VQVAETrainConfig


def test_plans_every_run_and_writes_the_table(tmp_path, monkeypatch):
    calls = []

    def fake_run(name, script, args, out):
        calls.append((name, script, args))
        return {"codebook_size": 1, "psnr": 20.0, "ssim": 0.5, "usage": 0.25, "perplexity": 3.0, "seconds_per_step": 0.1}

    monkeypatch.setattr(compare_tokenizers, "run_one", fake_run)
    monkeypatch.setattr(compare_tokenizers, "step_times", lambda names, scripts, out, rounds: dict.fromkeys(names, 0.1))
    rows = compare_tokenizers.main(["--output_dir", str(tmp_path), "--max_steps", "800", "--jobs", "2"])
    runs = {name: (script, args) for name, script, args in calls}
    assert sorted(runs) == sorted(f"{v}_{s}" for v in ("fsq", "vq", "vq_no_reset") for s in ("28", "210", "212"))
    assert runs["fsq_212"][0] == "train_fsq.py" and runs["fsq_212"][1][:2] == ["--levels", "[7, 5, 5, 5, 5]"]
    assert runs["vq_210"] == ("train_vqvae.py", ["--quantizer_options", "{codebook_size: 1024}", "--max_steps", "800",
                                                 "--cpu_threads", "1"])
    assert runs["vq_no_reset_28"][1][1] == "{codebook_size: 256, dead_code_threshold: 0}"
    assert all("--max_steps" in args for _, args in runs.values())  # one budget for all
    table = (tmp_path / "table.md").read_text()
    assert table.count("\n") == 2 + 9 and "| 2^10 | FSQ [8, 5, 5, 5] | 1 | 20.00 | 0.500 | 25.0 % | 3 | 100 |" in table
    assert len(json.loads((tmp_path / "results.json").read_text())) == len(rows) == 9
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_finished_runs_are_reused(tmp_path):
    (tmp_path / "fsq_28").mkdir()
    (tmp_path / "fsq_28" / "results.json").write_text(json.dumps({"psnr": 1.0}))
    assert compare_tokenizers.run_one("fsq_28", "train_fsq.py", [], tmp_path) == {"psnr": 1.0}


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "2^9"], "--sizes: unknown ['2^9']"),
    (["--variants", "lfq"], "--variants: unknown ['lfq']"),
    (["--levels", "[8,5,5,5]"], "['levels'] are set by the comparison itself"),
    (["--jobs", "0"], "--jobs=0 and --time_rounds=10 must be >= 1"),
])
def test_bad_arguments(tmp_path, argv, message):
    with pytest.raises(ValueError) as err:
        compare_tokenizers.main(["--output_dir", str(tmp_path), *argv])
    assert message in str(err.value)


def test_step_times_rebuild_each_run_from_its_config(tmp_path):
    tiny = ["--image_size", "16", "--channels", "8", "--batch_size", "4"]
    configs = {"fsq_28": parse_config(TokenizerTrainConfig, tiny + ["--levels", "[8,6,5]"]),
               "vq_28": parse_config(VQVAETrainConfig, tiny + ["--quantizer_options", "{codebook_size: 16, dim: 4}"])}
    for name, cfg in configs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(dump_config(cfg))
    times = compare_tokenizers.step_times(list(configs), ["train_fsq.py", "train_vqvae.py"], tmp_path, rounds=1)
    assert set(times) == set(configs) and all(t > 0 for t in times.values())
