"""Tiny train_flow.py runs shared by the flow script tests (trained once per test session)."""

import pytest

from tests.scripts.conftest import ROOT, run_script

TOY = ["--config", str(ROOT / "genlab" / "configs" / "flows" / "toy2d.yaml"), "--width", "16", "--depth", "1", "--batch_size", "32",
       "--toy2d_size", "1000", "--warmup_steps", "0", "--log_every", "1", "--eval_every", "0", "--eval_samples", "64",
       "--eval_batch_size", "64", "--eval_solvers", "[euler:2]", "--straightness_steps", "4"]
DIGITS = ["--net", "dit", "--width", "16", "--depth", "1", "--heads", "2", "--image_size", "8", "--batch_size", "16",
          "--warmup_steps", "0", "--log_every", "1", "--eval_every", "0", "--eval_samples", "20", "--straightness_steps", "2",
          "--grid_per_class", "2"]


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("flows")
    run_script([str(ROOT / "scripts" / "train_flow.py"), *TOY, "--max_steps", "4", "--ckpt_every", "2", "--name", "toy",
                "--output_dir", str(out)], out)
    return out / "toy"


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """Class-conditional DiT on 8x8 digits, bf16 autocast on the CPU, guided evaluation."""
    out = tmp_path_factory.mktemp("flows")
    run_script([str(ROOT / "scripts" / "train_flow.py"), *DIGITS, "--max_steps", "2", "--mixed_precision", "bf16",
                "--guidance_scale", "2", "--eval_solvers", "[euler:1]", "--name", "digits", "--output_dir", str(out)], out)
    return out / "digits"
