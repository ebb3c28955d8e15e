"""Parameter kinds by module type (not by name) and the decay / no-decay groups."""

import pytest
import torch
from torch import nn

from genlab.nn import GAU, RMSNorm
from genlab.optim import param_groups, parameter_kinds


class Odd(nn.Module):
    """Parameters with misleading names: kinds must follow module types, not names."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Embedding(5, 3)  # an embedding named "bias"
        self.gamma = nn.Linear(3, 3)  # a linear layer named "gamma"
        self.table = nn.Parameter(torch.zeros(2, 3))  # a bare matrix
        self.offset = nn.Parameter(torch.zeros(3))  # a bare vector
        self.norm = RMSNorm(3)
        self.ln = nn.LayerNorm(3)
        self.gn = nn.GroupNorm(1, 3)
        self.conv = nn.Conv2d(3, 3, 1)
        self.gau = GAU(4, qk_dim=4, bias=True)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_kinds_follow_module_types():
    kinds = parameter_kinds(Odd())
    assert kinds == {
        "table": "matrix", "offset": "bias", "bias.weight": "embedding", "gamma.weight": "matrix", "gamma.bias": "bias",
        "norm.weight": "gain", "ln.weight": "gain", "ln.bias": "bias", "gn.weight": "gain", "gn.bias": "bias",
        "conv.weight": "matrix", "conv.bias": "bias", "gau.proj_in.weight": "matrix", "gau.proj_in.bias": "bias",
        "gau.q_scale.gamma": "gain", "gau.q_scale.beta": "bias", "gau.k_scale.gamma": "gain", "gau.k_scale.beta": "bias",
        "gau.proj_out.weight": "matrix", "gau.proj_out.bias": "bias",
    }


def test_groups_decay_matrices_and_embeddings_only():
    model = Odd()
    groups = {g["kind"]: g for g in param_groups(model, 0.1)}
    assert {k: g["weight_decay"] for k, g in groups.items()} == {"matrix": 0.1, "embedding": 0.1, "gain": 0.0, "bias": 0.0}
    named = dict(model.named_parameters())
    for g in groups.values():
        assert all(named[n] is p for n, p in zip(g["names"], g["params"]))
    assert sum(len(g["params"]) for g in groups.values()) == sum(p.requires_grad for p in model.parameters())


def test_shared_parameters_appear_once():
    emb = nn.Embedding(7, 4)
    head = nn.Linear(4, 7, bias=False)
    head.weight = emb.weight  # tied
    model = nn.Sequential(emb, head)
    assert parameter_kinds(model) == {"0.weight": "embedding"}


def test_a_module_may_declare_its_kinds():
    class Scale(nn.Module):
        param_kinds = {"g": "gain"}

        def __init__(self):
            super().__init__()
            self.g = nn.Parameter(torch.ones(2, 2))

    assert parameter_kinds(Scale()) == {"g": "gain"}
    Scale.param_kinds = {"g": "scale"}
    with pytest.raises(ValueError, match="param_kinds\\['g'\\] of Scale='scale'"):
        parameter_kinds(Scale())
    with pytest.raises(ValueError, match="weight_decay=-1"):
        param_groups(nn.Linear(2, 2), -1)
