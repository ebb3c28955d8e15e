"""Reflow and distillation (Liu, Gong, Liu 2022, "Flow Straight and Fast", Sec. 2.2-2.3).

``Z^{k+1} = RectFlow((Z_0^k, Z_1^k))``: draw noise ``z_0``, integrate the current flow with an
accurate solver to ``z_1 = ODE_k(z_0)``, keep every ``(z_0, z_1)`` *paired*, and retrain with the
same loss on the pairs (:class:`CouplingDataset`; shuffling moves pairs, never one side alone).
Distillation to ``k`` steps trains on the pairs at the times ``{0, 1/k, ..., (k-1)/k}`` only
(``sample_times(..., "discrete", steps=k)``).

Couplings live in a folder: ``couplings.json`` (the settings: solver, steps, tolerances,
guidance, seed, the teacher) and shards ``pairs_00000.safetensors`` holding ``x0``, ``x1`` and
``labels``. Shard ``k`` depends only on ``(seed, k)`` and the teacher, is written atomically, and
is skipped when present, so generation resumes where a killed run stopped and can be split
across processes (shard ``k`` belongs to rank ``k mod world_size``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlab.flows.samplers import sample
from genlab.io import atomic_path, write_text_atomic

COUPLINGS_MANIFEST = "couplings.json"


def shard_name(k: int) -> str:
    return f"pairs_{k:05d}.safetensors"


def shard_seed(seed: int, k: int) -> int:
    """The seed of shard ``k``: a function of ``(seed, k)`` only, so any process may generate it."""
    return (seed * 1_000_003 + k) % 2**63


def _shard_sizes(num_pairs: int, shard_size: int) -> list[int]:
    n = math.ceil(num_pairs / shard_size)
    return [min(shard_size, num_pairs - k * shard_size) for k in range(n)]


def _check_manifest(folder: Path, settings: dict) -> None:
    path = folder / COUPLINGS_MANIFEST
    if not path.is_file():
        return
    stored = json.loads(path.read_text())
    differ = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
    if differ:
        detail = ", ".join(f"{k}: folder {stored.get(k)!r} vs now {settings.get(k)!r}" for k in differ[:6])
        raise ValueError(f"coupling folder {str(folder)!r} holds pairs generated with other settings ({detail}); "
                         "use another folder or the same settings to resume")


def _read_shard(path: Path, expected: int) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        shard = load_file(str(path))
    except Exception as e:
        raise ValueError(f"coupling shard {str(path)!r} is unreadable ({e}); delete it and rerun to regenerate it") from None
    if set(shard) != {"x0", "x1", "labels"} or len(shard["x0"]) != expected or shard["x0"].shape != shard["x1"].shape:
        raise ValueError(f"coupling shard {str(path)!r} does not hold {expected} aligned pairs; delete it and rerun")
    return shard


@torch.no_grad()
def generate_couplings(model: Callable[..., Tensor], folder: str | Path, num_pairs: int, data_shape: tuple[int, ...], *,
                       shard_size: int = 10_000, batch_size: int = 1000, seed: int = 0, method: str = "rk4",
                       steps: int | None = 32, num_classes: int = 0, guidance_scale: float = 1.0, rtol: float = 1e-5,
                       atol: float = 1e-5, device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1,
                       metadata: dict | None = None) -> dict:
    """Write ``num_pairs`` pairs ``(z_0, z_1 = ODE(z_0))`` of a flow into ``folder``; skip finished shards.

    Args:
        model: the teacher velocity model ``model(x, t[, labels])`` (its EMA weights, in eval mode).
        data_shape: shape of one sample, e.g. ``(2,)`` or ``(1, 16, 16)``.
        shard_size, batch_size: pairs per file and per solver call.
        seed: shard ``k`` draws its noise (and labels) from ``shard_seed(seed, k)`` on the CPU.
        method, steps, rtol, atol: the solver (see :func:`genlab.flows.sample`).
        num_classes: draw uniform labels in ``[0, num_classes)`` for a class-conditional teacher.
        guidance_scale: classifier-free guidance of the teacher (null class ``num_classes``).
        rank, world_size: generate only the shards ``k`` with ``k % world_size == rank``.
        metadata: recorded in the manifest (e.g. the teacher's weights file and config).

    Returns ``{"shards", "generated", "pairs", "nfe"}`` (``nfe`` per pair of the last shard made here).
    """
    for name, value in (("num_pairs", num_pairs), ("shard_size", shard_size), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    folder = Path(folder)
    settings = {"num_pairs": num_pairs, "shard_size": shard_size, "data_shape": list(data_shape), "seed": seed,
                "method": method, "steps": steps, "rtol": rtol, "atol": atol, "num_classes": num_classes,
                "guidance_scale": guidance_scale, "batch_size": batch_size, **(metadata or {})}
    _check_manifest(folder, settings)
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / COUPLINGS_MANIFEST).is_file():
            write_text_atomic(folder / COUPLINGS_MANIFEST, json.dumps(settings, indent=1))
    generated, nfe = 0, None
    sizes = _shard_sizes(num_pairs, shard_size)
    for k, n in enumerate(sizes):
        path = folder / shard_name(k)
        if k % world_size != rank:
            continue
        if path.is_file():
            _read_shard(path, n)
            continue
        g = torch.Generator().manual_seed(shard_seed(seed, k))
        x0 = torch.randn(n, *data_shape, generator=g)
        labels = torch.randint(num_classes, (n,), generator=g) if num_classes else torch.zeros(n, dtype=torch.long)
        x1 = []
        for xb, yb in zip(x0.split(batch_size), labels.split(batch_size)):
            out = sample(model, xb.to(device), steps, method, labels=yb.to(device) if num_classes else None,
                         guidance_scale=guidance_scale, null_label=num_classes if num_classes else None, rtol=rtol, atol=atol)
            x1.append(out.samples.float().cpu())
            nfe = out.nfe
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file({"x0": x0.contiguous(), "x1": torch.cat(x1).contiguous(), "labels": labels}, str(tmp),
                      metadata={"shard": str(k), "seed": str(shard_seed(seed, k))})
        generated += 1
    return {"shards": len(sizes), "generated": generated, "pairs": num_pairs, "nfe": nfe}


class CouplingDataset(Dataset):
    """The pairs of a coupling folder as items ``(x0, x1, label)``; aligned under any shuffle.

    Loads every shard into memory (in shard order) and refuses an incomplete folder.
    ``label`` is 0 for pairs of an unconditional flow.
    """

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        if not (folder / COUPLINGS_MANIFEST).is_file():
            raise FileNotFoundError(f"{str(folder)!r} is not a coupling folder (no {COUPLINGS_MANIFEST}); "
                                    "generate one with `python scripts/reflow.py couplings`")
        self.settings = json.loads((folder / COUPLINGS_MANIFEST).read_text())
        sizes = _shard_sizes(self.settings["num_pairs"], self.settings["shard_size"])
        missing = [shard_name(k) for k in range(len(sizes)) if not (folder / shard_name(k)).is_file()]
        if missing:
            raise ValueError(f"coupling folder {str(folder)!r} is incomplete: {len(missing)} of {len(sizes)} shards missing "
                             f"({missing[:3]}); rerun the same `reflow.py couplings` command to finish it")
        shards = [_read_shard(folder / shard_name(k), n) for k, n in enumerate(sizes)]
        self.x0 = torch.cat([s["x0"] for s in shards])
        self.x1 = torch.cat([s["x1"] for s in shards])
        self.labels = torch.cat([s["labels"] for s in shards])
        self.num_classes = int(self.settings["num_classes"])

    def __len__(self) -> int:
        return len(self.x0)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.x0[i], self.x1[i], self.labels[i]


@torch.no_grad()
def straightness(model: Callable[..., Tensor], x0: Tensor, steps: int = 100, method: str = "euler",
                 labels: Tensor | None = None, guidance_scale: float = 1.0, null_label: int | None = None) -> float:
    """``S(Z) = int_0^1 E ||(Z_1 - Z_0) - dZ_t/dt||^2 dt`` of the flow from ``x0 (B, ...)`` (Liu et al. 2022, Eq. 8).

    Integrates with ``steps`` uniform steps and uses each step's mean velocity
    ``(z_{i+1} - z_i) / h`` (exactly ``v(z_i, t_i)`` for Euler); the squared norm is summed over
    the data dimensions and averaged over the batch. ``S = 0`` means one Euler step is exact.
    """
    out = sample(model, x0, steps, method, labels=labels, guidance_scale=guidance_scale, null_label=null_label,
                 return_trajectory=True)
    z = out.trajectory.flatten(2)  # (N + 1, B, d)
    h = out.times.diff().to(z.dtype)  # (N,)
    velocity = z.diff(dim=0) / h[:, None, None]  # (N, B, d)
    gap = (z[-1] - z[0])[None] - velocity
    return (gap.square().sum(-1).mean(-1) * h).sum().item()


__all__ = ["CouplingDataset", "COUPLINGS_MANIFEST", "generate_couplings", "shard_name", "shard_seed", "straightness"]
