"""Files shipped inside the package, found through :mod:`importlib.resources` (so a wheel works too).

``genlab/assets/`` holds the digits feature network; ``genlab/configs/<family>/<name>.yaml`` the
experiment configs. A relative ``configs/...`` path that does not exist from the current folder is
read from the packaged configs, so ``--config configs/fsq/photos.yaml`` works from any folder and
from an installed wheel.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

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
