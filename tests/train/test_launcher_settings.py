"""Accelerate's settings: the launcher's apply unless the config sets them; an override is printed."""

from genlab.train import TrainConfig
from genlab.train.run import launcher_settings


def test_launcher_values_apply_when_unset_and_overrides_are_printed(monkeypatch, capsys):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4")
    assert launcher_settings(TrainConfig()) == (None, 4)  # None: the Accelerator reads the launcher's precision
    assert capsys.readouterr().out == ""
    assert launcher_settings(TrainConfig(mixed_precision="no", grad_accum=2)) == ("no", 2)
    out = capsys.readouterr().out
    assert "mixed_precision: the config sets 'no', the launcher 'bf16'; using 'no'" in out
    assert "grad_accum: the config sets 2, the launcher 4; using 2" in out
    monkeypatch.delenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
    assert launcher_settings(TrainConfig(mixed_precision="bf16")) == ("bf16", 1)
    assert capsys.readouterr().out == ""
