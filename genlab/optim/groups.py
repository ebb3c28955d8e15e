"""Parameter kinds and optimizer parameter groups, assigned by module type, never by name.

Every parameter gets one of Tiger's kinds (Su, kexue.fm 9512):

* ``matrix``: weights of linear and convolution layers and any other tensor with ``ndim >= 2``;
* ``embedding``: ``nn.Embedding`` tables (Tiger scales their step per row);
* ``gain``: norm scales (LayerNorm/GroupNorm/BatchNorm/RMSNorm weights, GAU's Q/K ``gamma``);
* ``bias``: biases, norm offsets and any other vector.

A module declares its own parameters' kinds with a class attribute ``param_kinds = {"gamma":
"gain"}``; torch's layers are covered by :data:`MODULE_KINDS`; anything else falls back to
nanoGPT's rule (``ndim >= 2`` is a matrix, the rest a bias). Matrices and embeddings decay,
gains and biases do not.
"""

from __future__ import annotations

from torch import nn

from genlab.utils import check_choice

KINDS = ["matrix", "embedding", "gain", "bias"]
DECAYED = {"matrix", "embedding"}
_NORM = {"weight": "gain", "bias": "bias"}
MODULE_KINDS: dict[type, dict[str, str]] = {
    nn.Embedding: {"weight": "embedding"},
    nn.LayerNorm: _NORM,
    nn.GroupNorm: _NORM,
    nn.RMSNorm: _NORM,
    nn.modules.batchnorm._BatchNorm: _NORM,
    nn.Linear: {"weight": "matrix", "bias": "bias"},
    nn.modules.conv._ConvNd: {"weight": "matrix", "bias": "bias"},
}


def _module_table(module: nn.Module) -> dict[str, str]:
    own = getattr(type(module), "param_kinds", None)
    if own is not None:
        return own
    for cls, table in MODULE_KINDS.items():
        if isinstance(module, cls):
            return table
    return {}


def parameter_kinds(model: nn.Module) -> dict[str, str]:
    """``{parameter name: kind}`` for every trainable parameter of ``model`` (shared ones once)."""
    kinds: dict[str, str] = {}
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        table = _module_table(module)
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            kind = table.get(name) or ("matrix" if p.ndim >= 2 else "bias")
            check_choice(f"param_kinds[{name!r}] of {type(module).__name__}", kind, KINDS)
            kinds[f"{prefix}.{name}" if prefix else name] = kind
    return kinds


def param_groups(model: nn.Module, weight_decay: float = 0.0) -> list[dict]:
    """One optimizer group per non-empty kind: ``{"params", "names", "kind", "weight_decay"}``.

    ``weight_decay`` applies to matrices and embeddings only. torch's optimizers ignore the extra
    ``names``/``kind`` keys; :class:`~genlab.optim.Tiger` reads ``kind``.
    """
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay={weight_decay!r} must be >= 0")
    named = dict(model.named_parameters())
    groups = {k: {"params": [], "names": [], "kind": k, "weight_decay": weight_decay if k in DECAYED else 0.0} for k in KINDS}
    for name, kind in parameter_kinds(model).items():
        groups[kind]["params"].append(named[name])
        groups[kind]["names"].append(name)
    return [g for g in groups.values() if g["params"]]


__all__ = ["DECAYED", "KINDS", "MODULE_KINDS", "param_groups", "parameter_kinds"]
