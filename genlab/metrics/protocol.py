"""The record written next to every score, so numbers are never compared across protocols."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "torchmetrics", "torch-fidelity", "genlab"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return versions


@dataclass
class Score:
    """A metric value with its protocol.

    Attributes:
        metric: what was computed, named after its feature network (``FID``, ``KID``,
            ``FD-digits-cnn``, ...).
        value: the score.
        protocol: sample counts, reference set and split, resize mode, weights hash, versions.
        extra: companion numbers (noise floor, precision/recall, classifier accuracy, std).
    """

    metric: str
    value: float
    protocol: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def __str__(self) -> str:
        parts = [f"{self.metric} = {self.value:.4g}"]
        parts += [f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in self.extra.items()]
        proto = ", ".join(f"{k}: {v}" for k, v in self.protocol.items() if k != "versions")
        return "; ".join(parts) + f"  [{proto}]"
