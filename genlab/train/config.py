"""Dataclass configs filled from YAML files and command-line overrides: the one command-line
convention of every script (training, sampling, evaluation, comparison).

Each script defines one dataclass (training scripts subclass :class:`TrainConfig`); ``configs/*.yaml``
set its fields; ``--key value``, ``--key=value`` or ``key=value`` on the command line win. Unknown keys
and values of the wrong type are errors that name the key, the value and what is accepted (with a
did-you-mean). ``-h`` / ``--help`` prints the script's docstring and every field with its type,
default and description, then exits 0.

    cfg = parse_config(FSQConfig, doc=__doc__)            # reads sys.argv
    cfg = parse_config(FSQConfig, ["--config", "configs/fsq/photos_long.yaml", "--max_steps", "10"])

**Why a hand-written parser.** Every field's description is the ``# comment`` written after it in the
dataclass, read back with ``tokenize`` from the class source (``field(metadata={"help": ...})`` wins
where given). The comments already document every field where it is declared, so the help cannot
drift from the code, and dataclasses stay one line per field. tyro and simple-parsing read the same
comments but bring their own flag syntax (``--levels 8 5 5 5``, nested ``--a.b``) that would break the
existing YAML-style values (``--levels "[8,5,5,5]"``, ``--quantizer_options "{codebook_size: 16}"``)
and the ``key=value`` form; argparse generated from the dataclass would need a type converter per
annotation anyway. The parser below is ~150 lines with no dependency beyond PyYAML. Without source
(a frozen install), descriptions are empty and everything else works.

**Resume.** With ``--resume``, the run folder's ``config.yaml`` is the config: ``--config`` need not be
repeated, and a value given on the command line that differs from the saved one is refused, naming
the keys, unless it is one of :data:`CHANGEABLE_ON_RESUME` (how long to train and how often to log,
evaluate and checkpoint; workers and threads). ``--resume RUN_DIR`` names the run folder directly.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import io
import sys
import textwrap
import tokenize
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
    output_dir: str = "runs"  # where run folders live
    seed: int = 0  # seeds the model init, data order and every random draw of training
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 64  # per process, per micro-batch
    grad_accum: int | None = None  # micro-batches per optimizer step; unset: the launcher's (accelerate launch --gradient_accumulation_steps, else 1)
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # decoupled weight decay of matrices and embeddings
    optimizer: str = "adamw"  # adamw | lion | tiger
    schedule: str = "constant"  # learning rate after the warm-up: constant | cosine (to 0 at max_steps) | linear (to 0 at max_steps)
    warmup_steps: int = 0  # linear warm-up of the learning rate over this many optimizer steps
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    mixed_precision: str | None = None  # no | bf16 | fp16; unset: the launcher's (accelerate launch --mixed_precision, accelerate config), else no
    num_workers: int = 0  # DataLoader workers
    cpu_threads: int = 0  # torch threads per process on CPU; 0 = the machine's cores shared among local processes
    log_every: int = 50  # steps between training-loss records
    eval_every: int = 500  # steps between evaluations; 0 = only at the end
    ckpt_every: int = 500  # steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    resume: bool = False  # continue the run folder's run with its saved config.yaml (or: --resume RUN_DIR)
    overwrite: bool = False  # replace an existing run folder instead of refusing
    dry_run: bool = False  # print the resolved config and exit
    compile: bool = False  # torch.compile the model where Accelerate prepares it (inductor)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field with a value outside its accepted range."""
        choices = {"mixed_precision": ["no", "bf16", "fp16"], "optimizer": ["adamw", "lion", "tiger"],
                   "schedule": ["constant", "cosine", "linear"]}
        for key, accepted in choices.items():
            if getattr(self, key) not in accepted and not (key == "mixed_precision" and self.mixed_precision is None):
                raise ValueError(f"config key {key!r}={getattr(self, key)!r} is not supported; expected one of {accepted}")
        if self.grad_accum is not None and self.grad_accum < 1:
            raise ValueError(f"config key 'grad_accum'={self.grad_accum!r} must be >= 1 (or left unset)")
        for key in ("max_steps", "batch_size", "log_every", "keep_checkpoints"):
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


CHANGEABLE_ON_RESUME = ("max_steps", "log_every", "eval_every", "ckpt_every", "keep_checkpoints", "num_workers",
                        "cpu_threads", "resume", "overwrite", "dry_run")
"""Keys a resumed run may take from the command line; any other key must match the saved config.yaml."""

HELP_FLAGS = ("-h", "--help")


def field_help(cls: type) -> dict[str, str]:
    """One-line description of every field of the dataclass ``cls``: ``field(metadata={"help": ...})``,
    else the ``# comment`` after the field in the class body (searched through the base classes, so a
    subclass that changes a default keeps the base's description)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # no source (frozen install): descriptions stay empty
            continue
        comments.update(_field_comments(source))
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = f.metadata.get("help") or comments.get(f.name, "")
    return out


def _field_comments(source: str) -> dict[str, str]:
    """``{name: comment}`` for the annotated fields of a class body (``name: type = default  # comment``)."""
    source = textwrap.dedent(source)
    try:
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    except (SyntaxError, tokenize.TokenError, IndexError, AttributeError):
        return {}
    found = {}
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = comments.get(node.lineno) or comments.get(node.end_lineno or node.lineno)
            if text:
                found[node.target.id] = text
    return found


def _type_name(f: dataclasses.Field, hints: dict[str, Any]) -> str:
    if isinstance(f.type, str):
        return f.type
    a = hints.get(f.name, f.type)
    return a.__name__ if isinstance(a, type) else str(a).replace("typing.", "")


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return "(required)"


def format_help(cls: type, doc: str | None = None, prog: str | None = None) -> str:
    """The text of ``--help``: usage, the script's docstring, then every field with type, default and description."""
    prog = prog or Path(sys.argv[0]).name
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    lines = [f"usage: {prog} [--config FILE.yaml ...] [--key value | --key=value | key=value ...]", ""]
    text = (doc if doc is not None else (cls.__doc__ or "")).strip("\n")
    if text:
        lines += [inspect.cleandoc(text), ""]
    lines += ["Options (YAML values: --levels \"[8,5,5,5]\", --flag / --flag true / --flag false; later ones win):",
              f"  {'--config':<22} {'path':<12} {'':<14} a YAML file of keys below; may be repeated", ""]
    for f in dataclasses.fields(cls):
        default = _default_of(f)
        shown = "unset" if default is None else yaml.safe_dump(_plain(default), default_flow_style=True, width=10**6).strip()
        shown = shown.removesuffix("\n...").strip()
        lines.append(f"  --{f.name:<20} {_type_name(f, hints):<12} {'= ' + shown:<14} {helps[f.name]}".rstrip())
    return "\n".join(lines) + "\n"


def parse_config(cls: type[C], argv: Sequence[str] | None = None, doc: str | None = None, prog: str | None = None) -> C:
    """Build ``cls`` from its defaults, then ``--config`` YAML files, then overrides (in that order).

    ``-h``/``--help`` prints :func:`format_help` (``doc``: the script's docstring) and exits 0. For a
    config with ``resume``, ``name`` and ``output_dir`` fields, ``--resume`` starts from the run folder's
    saved ``config.yaml`` (see the module docstring).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in HELP_FLAGS for a in argv):
        print(format_help(cls, doc, prog), end="")
        sys.exit(0)
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
        if key == "resume" and isinstance(value, str) and "output_dir" in known and "name" in known:
            run_dir = Path(raw)  # --resume RUN_DIR
            if not (run_dir / "config.yaml").is_file():
                raise TypeError(f"config key 'resume' expects true or false, or a run folder holding a config.yaml; "
                                f"got {raw!r}")
            values.update(resume=True, output_dir=str(run_dir.parent), name=run_dir.name)
            continue
        if hints[key] is str and not isinstance(value, str):
            value = raw  # keep strings like "1e-3" or "001" verbatim for str fields
        values[key] = _coerce(key, value, hints[key])
    if values.get("resume") and "output_dir" in known and "name" in known:
        values = _resume_values(cls, values, hints, known)
    cfg = cls(**values)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    if getattr(cfg, "dry_run", False):  # before a script builds anything (train_lm would train its tokenizer first)
        print(dump_config(cfg), end="")
        sys.exit(0)
    return cfg


def _resume_values(cls: type, given: dict[str, Any], hints: dict[str, Any], known: list[str]) -> dict[str, Any]:
    """The saved config of the run being resumed, with the command line's changeable keys applied.

    A given key whose value differs from the saved one (compared after ``__post_init__``, so merged
    defaults compare equal) is refused unless it is in :data:`CHANGEABLE_ON_RESUME`.
    """
    changeable = getattr(cls, "CHANGEABLE_ON_RESUME", CHANGEABLE_ON_RESUME)  # a config class may add its own
    defaults = {f.name: _default_of(f) for f in dataclasses.fields(cls)}
    folder = Path(given.get("output_dir", defaults["output_dir"])) / given.get("name", defaults["name"])
    saved_path = folder / "config.yaml"
    if not saved_path.is_file():
        return given  # nothing saved yet: a fresh start (Run says so)
    saved_values = {}
    for key, value in load_yaml(saved_path).items():
        if key not in known:
            raise _unknown_key(key, known, f"the saved config {str(saved_path)!r}")
        saved_values[key] = _coerce(key, value, hints[key])
    saved = cls(**saved_values)
    mine = cls(**given)
    differ = [k for k in given if k not in changeable and k not in ("output_dir", "name")
              and _plain(getattr(mine, k)) != _plain(getattr(saved, k))]
    if differ:
        detail = ", ".join(f"{k}: saved {_plain(getattr(saved, k))!r}, given {_plain(getattr(mine, k))!r}" for k in differ)
        raise ValueError(f"--resume continues {str(folder)!r} with its saved config.yaml; the command line changes "
                         f"{differ} ({detail}). Only {list(changeable)} may change on resume: drop the "
                         "others, or start a new run with --name (or --overwrite).")
    saved_values.update({k: v for k, v in given.items() if k in changeable})
    saved_values.update(resume=True, output_dir=str(folder.parent), name=folder.name)
    return saved_values


def dump_config(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def load_config_file(cls: type[C], path: str | Path) -> C:
    """Rebuild a config from a run folder's ``config.yaml`` (unknown keys are errors)."""
    return parse_config(cls, ["--config", str(path)])


__all__ = ["CHANGEABLE_ON_RESUME", "TrainConfig", "config_to_dict", "dump_config", "field", "field_help", "format_help",
           "load_config_file", "load_yaml", "parse_config"]
