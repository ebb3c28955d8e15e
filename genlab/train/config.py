"""Dataclass configs filled from YAML files and command-line overrides.

Each script defines one dataclass (subclassing :class:`TrainConfig`); ``configs/*.yaml`` set its
fields; ``--key value``, ``--key=value`` or ``key=value`` on the command line win. Unknown keys
and values of the wrong type are errors that name the key, the value and what is accepted.

    cfg = parse_config(FSQConfig)            # reads sys.argv
    cfg = parse_config(FSQConfig, ["--config", "configs/fsq/photos_long.yaml", "--max_steps", "10"])
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml

from genlab.resources import resolve_config_path

C = TypeVar("C")


@dataclass
class TrainConfig:
    """Fields every training script shares (run folder, precision, schedule, checkpoints)."""

    name: str = "run"  # the run folder is <output_dir>/<name>
    output_dir: str = "runs"
    seed: int = 0
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 64  # per process
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"  # adamw | lion | tiger
    warmup_steps: int = 0  # linear warm-up of the learning rate
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    mixed_precision: str = "no"  # no | bf16 | fp16 (Accelerate; bf16 works on CPU too)
    num_workers: int = 0  # DataLoader workers
    cpu_threads: int = 0  # torch threads per process on CPU; 0 = the machine's cores shared among local processes
    log_every: int = 50
    eval_every: int = 500  # 0 = only at the end
    ckpt_every: int = 500  # 0 = only at the end
    keep_checkpoints: int = 2
    resume: bool = False  # continue from the newest checkpoint in the run folder
    overwrite: bool = False  # replace an existing run folder instead of refusing
    dry_run: bool = False  # print the resolved config and exit
    compile: bool = False  # torch.compile the model where Accelerate prepares it (inductor)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field with a value outside its accepted range."""
        choices = {"mixed_precision": ["no", "bf16", "fp16"], "optimizer": ["adamw", "lion", "tiger"]}
        for key, accepted in choices.items():
            if getattr(self, key) not in accepted:
                raise ValueError(f"config key {key!r}={getattr(self, key)!r} is not supported; expected one of {accepted}")
        for key in ("max_steps", "batch_size", "grad_accum", "log_every", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ValueError(f"config key {key!r}={getattr(self, key)!r} must be >= 1")
        for key in ("eval_every", "ckpt_every", "warmup_steps", "num_workers", "cpu_threads"):
            if getattr(self, key) < 0:
                raise ValueError(f"config key {key!r}={getattr(self, key)!r} must be >= 0")
        for key in ("lr", "weight_decay", "grad_clip"):
            check_rate(key, getattr(self, key))
        if not isinstance(self.compile, bool):
            raise ValueError(f"config key 'compile'={self.compile!r} must be true or false")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError(f"config key 'name'={self.name!r} must be a plain folder name")


FLOAT32_MAX = 3.4028234663852886e38


def check_rate(key: str, value: Any) -> None:
    """A learning rate, weight decay or clipping norm: a finite number ``>= 0`` that float32 holds
    (the optimizers compute in the parameters' precision; 1e39 becomes inf there)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= FLOAT32_MAX:
        raise ValueError(f"config key {key!r}={value!r} must be a finite number >= 0 that float32 can hold "
                         f"(at most {FLOAT32_MAX:.4g})")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in dataclasses.asdict(cfg).items()}


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` (already YAML-parsed) against a field annotation, converting where lossless."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise TypeError(f"config key {key!r}: {value!r} matches none of {annotation}")
    if origin in (list, tuple, Sequence):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and args:
            value = [value]  # a single value for a list field
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"config key {key!r} expects a list; got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(key, v, inner) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise TypeError(f"config key {key!r} expects a mapping like {{a: 1}}; got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f"config key {key!r} expects true or false; got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"config key {key!r} expects an integer; got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise TypeError(f"config key {key!r} expects a number; got {value!r}")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise TypeError(f"config key {key!r} expects a string; got {value!r}")
    return value


def _unknown_key(key: str, known: Sequence[str], source: str) -> ValueError:
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {close}?" if close else ""
    return ValueError(f"unknown config key {key!r} in {source}{hint} Accepted keys: {sorted(known)}")


def _parse_argv(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Split argv into config files and (key, raw value) overrides."""
    files: list[str] = []
    overrides: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            if not eq:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if nxt is None or (nxt.startswith("--") and not _is_number(nxt)):
                    value = "true"  # a bare flag: --resume
                else:
                    value = nxt
                    i += 1
        elif "=" in arg:
            key, _, value = arg.partition("=")
        else:
            raise ValueError(f"cannot parse command-line argument {arg!r}; expected --key value, --key=value or key=value")
        key = key.replace("-", "_")
        if key == "config":
            files.append(value)
        else:
            overrides.append((key, value))
        i += 1
    return files, overrides


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = resolve_config_path(path)  # configs/<family>/<name>.yaml also from any folder or a wheel
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of keys to values; got {type(data).__name__}")
    return data


def parse_config(cls: type[C], argv: Sequence[str] | None = None) -> C:
    """Build ``cls`` from its defaults, then ``--config`` YAML files, then overrides (in that order)."""
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    files, overrides = _parse_argv(argv)
    values: dict[str, Any] = {}
    for path in files:
        for key, value in load_yaml(path).items():
            if key not in known:
                raise _unknown_key(key, known, f"config file {path!r}")
            values[key] = _coerce(key, value, hints[key])
    for key, raw in overrides:
        if key not in known:
            raise _unknown_key(key, known, "the command line")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if hints[key] is str and not isinstance(value, str):
            value = raw  # keep strings like "1e-3" or "001" verbatim for str fields
        values[key] = _coerce(key, value, hints[key])
    cfg = cls(**values)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    return cfg


def dump_config(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def load_config_file(cls: type[C], path: str | Path) -> C:
    """Rebuild a config from a run folder's ``config.yaml`` (unknown keys are errors)."""
    return parse_config(cls, ["--config", str(path)])


__all__ = ["TrainConfig", "config_to_dict", "dump_config", "field", "load_config_file", "load_yaml", "parse_config"]
