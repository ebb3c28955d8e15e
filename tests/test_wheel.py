"""The package works from a wheel: built from the sources, installed (no network) into a fresh virtual
environment, and used from a folder outside the checkout: the shipped digits classifier scores
digits and the shipped configs load by their ``configs/...`` names."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USE = """
import sys, genlab
assert genlab.__file__.startswith(sys.argv[1]), genlab.__file__  # the wheel's genlab, not the checkout's
from genlab.data.digits import load_digits_tensors
from genlab.metrics import digits_scores
from genlab.train.config import load_yaml
from genlab.resources import configs_dir
images, labels = load_digits_tensors("test")
score = digits_scores(images[:200], labels[:200], seed=0)
assert score.protocol["weights"] == "digits_classifier.safetensors", score.protocol
assert load_yaml("configs/fsq/photos.yaml") and len(list(configs_dir().glob("*/*.yaml"))) >= 10
print("ok", score.value)
"""


@pytest.mark.slow
def test_wheel_installs_and_scores_digits_outside_the_checkout(tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "genlab", src / "genlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("genlab-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the test's own environment (torch, ...) when it is itself a virtual environment; its genlab (editable,
    # through an import hook that a plain path line does not run) stays out
    (site / "outer.pth").write_text("\n".join({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}) + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(python), "-c", USE, str(site)], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")
