"""compare_gans.py: tiny end-to-end comparison, and its table reporting diverged runs honestly."""

import importlib.util
import json

from tests.scripts.conftest import ROOT, run_script


def _compare():
    spec = importlib.util.spec_from_file_location("compare_gans", ROOT / "scripts" / "compare_gans.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_comparison_writes_the_tables_and_figures(tmp_path, script):
    out = tmp_path / "cmp"
    args = [script("compare_gans.py"), "--objectives", "fgan_gan", "--seeds", "0", "--toy_steps", "2", "--toy_width", "8",
            "--toy_samples", "200", "--toy_batch", "16", "--digits_steps", "1", "--digits_width", "4", "--n_critic", "1", "--out", str(out)]
    proc = run_script(args, tmp_path)
    table = (out / "comparison.md").read_text()
    assert "| `fgan_gan` |" in table and "FD-digits-cnn" in table and "noise floor" in table
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["toy"]["fgan_gan"]["per_seed"] and "fd_digits_cnn" in summary["digits"]["fgan_gan"]
    assert (out / "toy_samples.png").exists() and (out / "digits_grids.png").exists()
    again = run_script(args, tmp_path)  # finished runs are reused, not trained again
    assert "done in" in proc.stdout and "done in" not in again.stdout


def test_table_reports_diverged_runs_and_the_bar():
    compare = _compare()
    ok = {"modes_covered": 25, "high_quality": 0.9, "swd": 0.1}
    table, summary = compare.toy_table({"wgan_gp": [ok, ok, {"failed": "loss became nan at step 7"}],
                                        "fgan_kl": [{"failed": "x"}], "reflow": [ok, dict(ok, high_quality=0.5), ok]})
    assert "| `wgan_gp` | 25 | 90.0% | 0.100 | 25 / 90%, 25 / 90%, 1 diverged | **no** |" in table
    assert "| `fgan_kl` | — | — | — | all diverged |" in table
    assert "| `reflow` | 25 | 90.0% | 0.100 | 25 / 90%, 25 / 50%, 25 / 90% | yes |" in table
    assert summary["wgan_gp"]["failed_runs"] == 1
