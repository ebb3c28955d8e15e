"""Every script answers ``-h`` and ``--help`` with exit code 0 and lists every field of its config with
its type, default and description (in process for most, through a real subprocess for two)."""

import dataclasses
import importlib
import runpy
import subprocess
import sys

import pytest

from genlab.train.config import field_help
from tests.scripts.conftest import ROOT, _env

# script -> the config classes whose fields its help must list
CONFIGS = {
    "train_fsq.py": ["TokenizerTrainConfig"],
    "train_vqvae.py": ["VQVAETrainConfig"],
    "train_flow.py": ["FlowTrainConfig"],
    "train_gan.py": ["GANTrainConfig"],
    "train_lm.py": ["LMTrainConfig"],
    "train_feature_net.py": ["FeatureNetConfig"],
    "sample_flow.py": ["SampleFlowConfig"],
    "sample_gan.py": ["SampleGANConfig"],
    "sample_lm.py": ["SampleConfig"],
    "fid.py": ["FIDConfig"],
    "reflow.py": ["CouplingsConfig", "ReflowConfig", "DistillConfig"],
    "compare_gans.py": ["CompareGANsConfig"],
    "compare_tokenizers.py": ["CompareTokenizersConfig"],
    "eval_lm_length.py": ["LengthEvalConfig"],
}
# bench.py (argparse over benchmark topics) is the benchmark suite's tool, not a model script; it keeps its flags.
OTHER_TOOLS = {"bench.py", "__init__.py"}


def _classes(script: str) -> list[type]:
    module = importlib.import_module(f"scripts.{script.removesuffix('.py')}")
    return [getattr(module, name) for name in CONFIGS[script]]


def _check_lists_every_field(text: str, classes: list[type]) -> None:
    for cls in classes:
        helps = field_help(cls)
        for f in dataclasses.fields(cls):
            lines = [ln for ln in text.splitlines() if ln.strip().startswith(f"--{f.name} ")]
            assert lines, f"--{f.name} of {cls.__name__} missing from the help"
            assert any(helps[f.name] in ln for ln in lines), (f.name, helps[f.name], lines)


def test_every_script_is_covered():
    scripts = {p.name for p in (ROOT / "scripts").glob("*.py")} - OTHER_TOOLS
    assert scripts == set(CONFIGS)


@pytest.mark.parametrize("script", sorted(CONFIGS))
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_exits_0_and_lists_every_field(script, flag, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [script, flag])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / "scripts" / script), run_name="__main__")
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("usage:") or script == "reflow.py"
    _check_lists_every_field(out, _classes(script))


def test_help_of_a_subcommand_and_a_key_value_help(capsys):
    from scripts.reflow import DistillConfig, main

    with pytest.raises(SystemExit) as exit_:
        main(["distill", "--name", "x", "-h"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "reflow.py distill" in out and "train_flow.py key" in out
    _check_lists_every_field(out, [DistillConfig])


@pytest.mark.parametrize("script, flag", [("train_fsq.py", "-h"), ("reflow.py", "--help")])
def test_help_through_a_real_process(script, flag):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), flag], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    _check_lists_every_field(proc.stdout, _classes(script))


@pytest.mark.parametrize("script", sorted(CONFIGS))
def test_every_field_has_a_description(script):
    for cls in _classes(script):
        assert [k for k, v in field_help(cls).items() if not v] == [], cls.__name__
