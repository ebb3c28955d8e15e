"""Files shipped inside the package, found through :mod:`importlib.resources` (so a wheel works too).

``genlab/assets/`` holds the digits feature network; ``genlab/configs/<family>/<name>.yaml`` the
experiment configs. A relative ``configs/...`` path that does not exist from the current folder is
read from the packaged configs, so ``--config configs/fsq/photos.yaml`` works from any folder and
from an installed wheel.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import torch

CONFIGS_PREFIX = "configs"


def _package_file(*parts: str) -> Path:
    # genlab is installed as plain files (a wheel unpacks into site-packages), so the resource is a real path
    return Path(str(files("genlab").joinpath(*parts)))


def asset_path(name: str) -> Path:
    """Path of a shipped asset, e.g. ``asset_path("digits_classifier.safetensors")``."""
    return _package_file("assets", name)


def configs_dir() -> Path:
    """The folder of the shipped configs (``<family>/<name>.yaml``)."""
    return _package_file(CONFIGS_PREFIX)


def resolve_config_path(path: str | Path) -> Path:
    """``path`` if it exists; else, for a relative ``configs/<family>/<name>.yaml``, the packaged config.

    Any other path comes back unchanged (the caller reports it missing).
    """
    p = Path(path)
    if p.exists() or p.is_absolute() or not p.parts or p.parts[0] != CONFIGS_PREFIX:
        return p
    packaged = configs_dir().joinpath(*p.parts[1:])
    return packaged if packaged.is_file() else p


__all__ = ["asset_path", "configs_dir", "resolve_config_path"]


def find_hub_weights(path: str | os.PathLike | None, filename: str, name: str, needed_by: str, option: str,
                     url: str) -> Path:
    """A pretrained weights file that genlab never downloads: ``path`` if given, else
    ``<torch hub dir>/checkpoints/<filename>``; otherwise an error saying where the file goes.

    ``name`` names the weights ("Inception"), ``needed_by`` what needs them ("FID"), ``option`` the
    command-line option that takes a path, ``url`` where a machine with internet access finds the file.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{name} weights {str(p)!r} ({option}) do not exist")
        return p
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return cached
    raise FileNotFoundError(
        f"{needed_by} needs the {name} weights and genlab does not download at run time. Put the file {filename} "
        f"at {str(cached)!r} (the torch hub cache) or pass its path (--{option} PATH). On a machine with internet "
        f"access it is {url}."
    )
