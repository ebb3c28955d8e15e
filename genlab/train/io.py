"""Atomic file writes and safetensors weights that refuse to load into the wrong model.

A write goes to a temporary file in the same folder and is renamed into place, so a killed
process never leaves a partial file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(model: nn.Module, path: str | Path, kind: str, config: dict | None = None) -> None:
    """Save ``model.state_dict()`` as safetensors with ``kind`` (what model it is) and its config.

    ``kind`` (e.g. ``"ImageTokenizer"``) is checked by :func:`load_weights`, so weights of one
    model are never loaded into another.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"genlab_kind": kind, "config": json.dumps(config or {})}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)


def read_weights_metadata(path: str | Path) -> dict:
    """The metadata of a genlab safetensors file: ``{"kind": str, "config": dict}``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for truncated/garbled headers
        raise ValueError(f"weights file {str(path)!r} is not a readable safetensors file ({e})") from None
    if "genlab_kind" not in meta:
        raise ValueError(f"weights file {str(path)!r} was not written by genlab (no 'genlab_kind' metadata)")
    return {"kind": meta["genlab_kind"], "config": json.loads(meta.get("config", "{}"))}


def load_weights(model: nn.Module, path: str | Path, kind: str) -> dict:
    """Load safetensors weights into ``model`` after checking kind, names and shapes.

    Nothing is loaded unless every tensor matches: the model is never left half-loaded.
    Returns the stored config.
    """
    from safetensors.torch import load_file

    meta = read_weights_metadata(path)
    if meta["kind"] != kind:
        raise ValueError(f"weights file {str(path)!r} holds a {meta['kind']!r}, not a {kind!r}")
    try:
        state = load_file(str(path))
    except Exception as e:
        raise ValueError(f"weights file {str(path)!r} is corrupt or truncated ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"missing {missing[:5]}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:5]}")
        if wrong:
            detail.append("shape mismatch " + ", ".join(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:5]))
        raise ValueError(f"weights file {str(path)!r} does not fit this {kind} ({'; '.join(detail)}); was it saved with another config?")
    with torch.no_grad():
        model.load_state_dict(state)
    return meta["config"]
