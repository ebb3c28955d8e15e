"""Configs: YAML then command-line overrides, types checked, unknown keys rejected."""

from dataclasses import dataclass, field

import pytest

from genlab.train import TrainConfig, dump_config, parse_config


@dataclass
class Cfg(TrainConfig):
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])
    options: dict = field(default_factory=dict)
    ratio: float = 0.5
    label: str = "x"


def test_defaults_yaml_and_overrides_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_steps: 7\nlevels: [7, 5, 5, 5, 5]\nratio: 1\n")
    cfg = parse_config(Cfg, ["--config", str(path), "--max_steps", "9", "lr=3e-4", "--resume", "--label=001",
                             "--options", "{codebook_size: 16}"])
    assert cfg.max_steps == 9 and cfg.levels == [7, 5, 5, 5, 5] and cfg.ratio == 1.0
    assert cfg.lr == 3e-4 and cfg.resume is True and cfg.label == "001" and cfg.options == {"codebook_size": 16}
    assert parse_config(Cfg, []) == Cfg()


def test_round_trip_through_the_dumped_yaml(tmp_path):
    cfg = parse_config(Cfg, ["--max_steps", "3", "--levels", "[8,8,8]"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg))
    assert parse_config(Cfg, ["--config", str(path)]) == cfg


def test_negative_numbers_are_values_not_flags():
    assert parse_config(Cfg, ["--ratio", "-2"]).ratio == -2.0


@pytest.mark.parametrize("argv, error, match", [
    (["--max_step", "3"], ValueError, "did you mean \\['max_steps'"),
    (["--max_steps", "abc"], TypeError, "'max_steps' expects an integer"),
    (["--max_steps", "1.5"], TypeError, "expects an integer"),
    (["--resume", "maybe"], TypeError, "expects true or false"),
    (["--levels", "{a: 1}"], TypeError, "expects a list"),
    (["--optimizer", "sgd"], ValueError, "'optimizer'='sgd' is not supported"),
    (["--mixed_precision", "fp8"], ValueError, "expected one of \\['no', 'bf16', 'fp16'\\]"),
    (["--max_steps", "0"], ValueError, "must be >= 1"),
    (["stray"], ValueError, "cannot parse"),
])
def test_bad_overrides(argv, error, match):
    with pytest.raises(error, match=match):
        parse_config(Cfg, argv)


def test_bad_yaml_files(tmp_path):
    (tmp_path / "a.yaml").write_text("max_stepz: 3\n")
    with pytest.raises(ValueError, match="unknown config key 'max_stepz' in config file"):
        parse_config(Cfg, ["--config", str(tmp_path / "a.yaml")])
    (tmp_path / "b.yaml").write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        parse_config(Cfg, ["--config", str(tmp_path / "b.yaml")])
    (tmp_path / "c.yaml").write_text("a: [1\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        parse_config(Cfg, ["--config", str(tmp_path / "c.yaml")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_config(Cfg, ["--config", str(tmp_path / "missing.yaml")])


def test_help_lists_every_field_with_type_default_and_comment(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_config(Cfg, ["--max_steps", "3", "-h"], doc="The tool.", prog="tool.py")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tool.py") and "The tool." in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("--grad_clip "))
    assert "float" in line and "= 0.0" in line and "max gradient norm; 0 = off" in line
    assert "--levels" in out and "[8, 5, 5, 5]" in out and "--mixed_precision" in out and "unset" in out


def _saved_run(tmp_path, *argv):
    cfg = parse_config(Cfg, ["--output_dir", str(tmp_path), "--name", "r", *argv])
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text(dump_config(cfg))
    return tmp_path / "r" / "config.yaml"


def test_resume_takes_the_saved_config_and_refuses_changes(tmp_path):
    saved = _saved_run(tmp_path, "--levels", "[8,5,5,5]", "--lr", "0.01", "--max_steps", "40")
    before = saved.read_bytes()
    where = ["--output_dir", str(tmp_path), "--name", "r"]
    cfg = parse_config(Cfg, [*where, "--resume", "--max_steps", "60", "--eval_every", "7"])
    assert cfg.lr == 0.01 and cfg.max_steps == 60 and cfg.eval_every == 7 and cfg.resume
    assert parse_config(Cfg, ["--resume", str(tmp_path / "r")]).lr == 0.01  # --resume RUN_DIR
    with pytest.raises(ValueError, match=r"changes \['levels', 'lr'\].*levels: saved \[8, 5, 5, 5\], given \[4, 4\]"):
        parse_config(Cfg, [*where, "--resume", "--levels", "[4,4]", "--lr", "0.5"])
    assert parse_config(Cfg, [*where, "--resume", "--lr", "0.01"]).lr == 0.01  # the same value is fine
    assert saved.read_bytes() == before
    with pytest.raises(TypeError, match="a run folder holding a config.yaml"):
        parse_config(Cfg, ["--resume", str(tmp_path / "missing")])


def test_dry_run_prints_the_resolved_config_before_anything_is_built(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_config(TrainConfig, ["--dry_run", "--max_steps", "7"])
    assert exit_.value.code == 0 and "max_steps: 7" in capsys.readouterr().out
