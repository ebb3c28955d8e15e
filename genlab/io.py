"""Files below everything else: atomic writes, sha256, safetensors weights that name their kind, and
the one loader behind every ``from_pretrained``.

A write goes to a temporary file in the same folder and is renamed into place, so a killed process
never leaves a partial file under the final name. A weights file stores, next to the tensors, the
kind of model it holds (``genlab_kind``) and the config that rebuilds it, so weights of one model
are never loaded into another. Saving the same module twice gives the same bytes.

Every model a user keeps mixes in :class:`PretrainedMixin`::

    net.save_pretrained("my_flow")                  # my_flow/config.json + my_flow/model.safetensors
    net = VelocityNet.from_pretrained("my_flow")    # or a single genlab .safetensors file

The folder is the Hugging Face layout (``config.json`` + ``model.safetensors``, as written by
huggingface_hub's ``PyTorchModelHubMixin`` and diffusers' ``ModelMixin``); a Hub id
(``"owner/name"``) that is not a local path is fetched with ``huggingface_hub`` when online.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, TypeVar

import torch
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
KIND_KEY = "genlab_kind"  # in a safetensors header's metadata, and (as "_genlab_kind") in config.json
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

M = TypeVar("M", bound="PretrainedMixin")


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


def safetensors_bytes(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file as bytes, the same bytes for the same tensors and metadata.

    safetensors writes the metadata of its header from a hash map, in an order that changes from
    one process to the next; the header is rewritten here with the metadata keys sorted (the
    tensors keep safetensors' own order and offsets, so the file stays valid).
    """
    from safetensors.torch import save

    raw = save(state, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to a multiple of 8 bytes
    return len(text).to_bytes(8, "little") + text + raw[8 + n:]


def save_weights(model: nn.Module, path: str | Path, kind: str, config: dict | None = None) -> None:
    """Save ``model.state_dict()`` as safetensors with ``kind`` (what model it is) and its config.

    ``kind`` (e.g. ``"ImageTokenizer"``) is checked by :func:`load_weights`, so weights of one
    model are never loaded into another. The same weights, kind and config give the same bytes.
    """
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {KIND_KEY: kind, "config": json.dumps(config or {}, sort_keys=True), "format": "pt"}
    data = safetensors_bytes(state, meta)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"weights path {str(path)!r} is a folder; pass the weights file inside it, or load the "
                                f"folder with from_pretrained (it reads {CONFIG_NAME} and {WEIGHTS_NAME})")
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")


def read_weights_metadata(path: str | Path) -> dict:
    """The metadata of a genlab safetensors file: ``{"kind": str, "config": dict}``."""
    from safetensors import safe_open

    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for truncated/garbled headers
        raise ValueError(f"weights file {str(path)!r} is not a readable safetensors file ({e})") from None
    if KIND_KEY not in meta:
        raise ValueError(f"weights file {str(path)!r} was not written by genlab (no {KIND_KEY!r} metadata)")
    try:
        config = json.loads(meta.get("config", "{}"))
    except json.JSONDecodeError as e:
        raise ValueError(f"weights file {str(path)!r} holds a {meta[KIND_KEY]!r} whose stored config is not JSON "
                         f"({e}); the file was altered or written by another program") from None
    if not isinstance(config, dict):
        raise ValueError(f"weights file {str(path)!r}: the stored config is a {type(config).__name__}, not a JSON object")
    return {"kind": meta[KIND_KEY], "config": config}


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


def _from_hub(repo_id: str) -> Path:
    """Download ``config.json`` and ``model.safetensors`` of a Hub repository; the local folder."""
    from huggingface_hub import hf_hub_download

    try:
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            file = hf_hub_download(repo_id, name)
    except Exception as e:  # offline, unknown repository, missing file: say what was tried
        raise FileNotFoundError(f"{repo_id!r} is neither a local file or folder nor a Hub repository with {CONFIG_NAME} "
                                f"and {WEIGHTS_NAME} that could be downloaded ({type(e).__name__}: {e})") from None
    return Path(file).parent


def resolve_pretrained(path: str | Path) -> tuple[Path, dict]:
    """``(weights file, stored config)`` of a saved model: a folder, a single genlab file, or a Hub id.

    A folder holds ``config.json`` (the config and ``_genlab_kind``) and ``model.safetensors``; a
    single file carries both in its header. The stored config's ``"_genlab_kind"`` names the kind.
    """
    p = Path(path)
    if not p.exists() and isinstance(path, str) and _HUB_ID.match(path) and not path.endswith(".safetensors"):
        p = _from_hub(path)
    if p.is_dir():
        config_file, weights = p / CONFIG_NAME, p / WEIGHTS_NAME
        for f in (config_file, weights):
            if not f.is_file():
                raise FileNotFoundError(f"folder {str(p)!r} has no {f.name}; a saved model folder holds {CONFIG_NAME} and "
                                        f"{WEIGHTS_NAME} (written by save_pretrained)")
        try:
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{str(config_file)!r} is not JSON ({e})") from None
        if not isinstance(config, dict) or "_genlab_kind" not in config:
            raise ValueError(f"{str(config_file)!r} was not written by genlab (no '_genlab_kind' key)")
        return weights, config
    meta = read_weights_metadata(p)
    return p, {**meta["config"], "_genlab_kind": meta["kind"]}


def load_pretrained(path: str | Path, kind: str, build: Callable[[dict], nn.Module],
                    map_location: str | torch.device = "cpu") -> nn.Module:
    """The one loader: resolve ``path`` (folder, file or Hub id), check the kind, ``build(config)``, load.

    ``build`` gets the stored config (extra keys included) and returns the bare model; the weights
    must then fit it exactly. The model comes back in eval mode on ``map_location``.
    """
    weights, config = resolve_pretrained(path)
    found = config.pop("_genlab_kind")
    if found != kind:
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise ValueError(f"{str(path)!r} holds a {found!r}, not {article} {kind!r}; load it with the class of that kind")
    model = build(config)
    load_weights(model, weights, kind)
    return model.to(map_location).eval()


def known_fields(config: dict, fields: Any) -> dict:
    """The entries of ``config`` whose keys are ``fields`` (names, or a dataclass)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(fields)} if dataclasses.is_dataclass(fields) else set(fields)
    return {k: v for k, v in config.items() if k in names}


class PretrainedMixin:
    """``save_pretrained(directory)`` / ``from_pretrained(directory_or_file)`` for a model class.

    A class sets ``weights_kind`` and implements :meth:`pretrained_config` (a JSON-able dict) and
    :meth:`from_config` (rebuild the bare model from that dict, ignoring keys it does not know).
    """

    weights_kind: ClassVar[str]

    def pretrained_config(self) -> dict:
        raise TypeError(f"{type(self).__name__} does not implement pretrained_config(), so it cannot be saved with save_pretrained")

    @classmethod
    def from_config(cls: type[M], config: dict) -> M:
        raise TypeError(f"{cls.__name__} does not implement from_config(), so it cannot be loaded with from_pretrained")

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``directory/config.json`` and ``directory/model.safetensors`` (atomically); the folder.

        The weights file also carries the kind and config, so it loads on its own as well.
        """
        directory = Path(directory)
        if directory.is_file():
            raise ValueError(f"directory={str(directory)!r} is a file; save_pretrained writes a folder")
        config = self.pretrained_config()
        save_weights(self, directory / WEIGHTS_NAME, self.weights_kind, config)  # type: ignore[arg-type]
        text = json.dumps({"_genlab_kind": self.weights_kind, **config}, indent=2, sort_keys=True) + "\n"
        write_text_atomic(directory / CONFIG_NAME, text)
        return directory

    @classmethod
    def from_pretrained(cls: type[M], path: str | Path, map_location: str | torch.device = "cpu") -> M:
        """Rebuild the model saved at ``path``: a :meth:`save_pretrained` folder, a genlab weights file,
        or a Hub id; in eval mode on ``map_location``."""
        model = load_pretrained(path, cls.weights_kind, cls.from_config, map_location)
        if not isinstance(model, cls):
            raise ValueError(f"{str(path)!r} holds a {type(model).__name__}, not a {cls.__name__}; load it with "
                             f"{type(model).__name__}.from_pretrained")
        return model


__all__ = [
    "CONFIG_NAME", "KIND_KEY", "PretrainedMixin", "WEIGHTS_NAME", "atomic_path", "known_fields", "load_pretrained",
    "load_weights", "read_weights_metadata", "resolve_pretrained", "safetensors_bytes", "save_weights", "sha256_file",
    "write_text_atomic",
]
