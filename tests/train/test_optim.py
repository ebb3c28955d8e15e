"""build_optimizer: every name gives its optimizer on kind-tagged groups."""

import pytest
import torch
from torch import nn

from genlab.optim import Lion, Tiger
from genlab.train import build_optimizer


def _model():
    return nn.Sequential(nn.Embedding(10, 8), nn.LayerNorm(8), nn.Linear(8, 3))


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW), ("lion", Lion), ("tiger", Tiger)])
def test_each_optimizer_trains_a_step(name, cls):
    torch.manual_seed(0)
    model = _model()
    opt = build_optimizer(name, model, lr=1e-3, weight_decay=0.01)
    assert isinstance(opt, cls)
    assert {g["kind"]: g["weight_decay"] for g in opt.param_groups} == {"matrix": 0.01, "embedding": 0.01, "gain": 0.0, "bias": 0.0}
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.tensor([[1, 2, 3]])).square().mean().backward()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if b.grad is not None and b.grad.any())


def test_betas_and_bad_names():
    assert build_optimizer("lion", _model(), 1e-4).param_groups[0]["betas"] == (0.9, 0.99)
    assert build_optimizer("tiger", _model(), 1e-3).param_groups[0]["beta"] == 0.965
    assert build_optimizer("tiger", _model(), 1e-3, betas=(0.945, 0.945)).param_groups[0]["beta"] == 0.945
    with pytest.raises(ValueError, match="Tiger has one momentum"):
        build_optimizer("tiger", _model(), 1e-3, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        build_optimizer("sgd", _model(), 1e-3)
