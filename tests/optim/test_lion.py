"""Lion: foreach == loop bitwise (the loop is the CPU default), equal to lion-pytorch (default and foreach paths) and to the
automl formula, invariant to the loss scale, one state buffer per parameter."""

import pytest
import torch
from lion_pytorch import Lion as PeerLion
from lion_pytorch.foreach import Lion as PeerForeachLion

from genlab.optim import Lion

SHAPES = [(7, 5), (3,), (2, 3, 4), (1,), (16, 16)]


def _params(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype, requires_grad=True) for s in SHAPES]


def _run(make_opt, steps=6, dtype=torch.float32, loss_scale=1.0):
    params = _params(dtype)
    opt = make_opt(params)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=dtype) * loss_scale
        opt.step()
    return params, opt


def test_foreach_equals_the_loop_bitwise():
    a, oa = _run(lambda ps: Lion(ps, lr=1e-2, weight_decay=0.1, foreach=True))
    b, ob = _run(lambda ps: Lion(ps, lr=1e-2, weight_decay=0.1, foreach=False))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(torch.equal(oa.state[x]["exp_avg"], ob.state[y]["exp_avg"]) for x, y in zip(a, b))


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("betas", [(0.9, 0.99), (0.95, 0.98)])
def test_equals_lion_pytorch(betas, foreach):
    ours, ours_opt = _run(lambda ps: Lion(ps, lr=3e-3, betas=betas, weight_decay=0.3, foreach=foreach), dtype=torch.float64)
    peer, peer_opt = _run(lambda ps: PeerLion(ps, lr=3e-3, betas=betas, weight_decay=0.3, use_triton=False), dtype=torch.float64)
    assert all(torch.equal(x, y) for x, y in zip(ours, peer))  # the sign makes parameters bit-identical
    for x, y in zip(ours, peer):  # the momentum differs by lerp vs mul+add rounding only
        torch.testing.assert_close(ours_opt.state[x]["exp_avg"], peer_opt.state[y]["exp_avg"], rtol=1e-14, atol=1e-15)
    # lion-pytorch's foreach path uses the same lerp kernels: bitwise equal everywhere.
    same, same_opt = _run(lambda ps: PeerForeachLion(ps, lr=3e-3, betas=betas, weight_decay=0.3), dtype=torch.float64)
    assert all(torch.equal(x, y) for x, y in zip(ours, same))
    assert all(torch.equal(ours_opt.state[x]["exp_avg"], same_opt.state[y]["exp_avg"]) for x, y in zip(ours, same))


def test_equals_the_automl_formula_float64():
    lr, (b1, b2), wd = 1e-2, (0.9, 0.99), 0.5
    ours, _ = _run(lambda ps: Lion(ps, lr=lr, betas=(b1, b2), weight_decay=wd), dtype=torch.float64)
    params = [p.detach().clone() for p in _params(torch.float64)]
    ms = [torch.zeros_like(p) for p in params]
    g = torch.Generator().manual_seed(1)
    for _ in range(6):
        for i, p in enumerate(params):
            grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
            c = b1 * ms[i] + (1 - b1) * grad
            params[i] = p - lr * (torch.sign(c) + wd * p)
            ms[i] = b2 * ms[i] + (1 - b2) * grad
    for x, y in zip(ours, params):
        torch.testing.assert_close(x.detach(), y, rtol=1e-15, atol=1e-15)


def test_loss_scale_does_not_change_the_trajectory():
    a, _ = _run(lambda ps: Lion(ps, lr=1e-2, weight_decay=0.1))
    b, _ = _run(lambda ps: Lion(ps, lr=1e-2, weight_decay=0.1), loss_scale=1000.0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_one_state_buffer_per_parameter_and_state_dict_round_trip():
    params, opt = _run(lambda ps: Lion(ps, lr=1e-2))
    assert all(list(opt.state[p]) == ["exp_avg"] for p in params)
    clone = Lion([p.detach().clone().requires_grad_() for p in params], lr=1e-2)
    clone.load_state_dict(opt.state_dict())
    assert all(torch.equal(clone.state[q]["exp_avg"], opt.state[p]["exp_avg"])
               for p, q in zip(params, clone.param_groups[0]["params"]))


def test_closure_and_parameters_without_gradients():
    w = torch.ones(3, requires_grad=True)
    frozen = torch.ones(2, requires_grad=True)
    opt = Lion([w, frozen], lr=0.1)

    def closure():
        loss = (w * torch.tensor([1.0, -1.0, 0.0])).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 0.0 and torch.equal(frozen, torch.ones(2))  # returns the closure's loss
    torch.testing.assert_close(w.detach(), torch.tensor([0.9, 1.1, 1.0]))  # sign(0) = 0: no step


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="lr=-1"):
        Lion([torch.zeros(1, requires_grad=True)], lr=-1)
    with pytest.raises(ValueError, match="betas="):
        Lion([torch.zeros(1, requires_grad=True)], betas=(0.9, 1.5))


def test_every_parameter_group_is_validated_with_its_index():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="parameter group 0: lr=-1.0 must be a finite number >= 0"):
        Lion([{"params": [a], "lr": -1.0}])
    with pytest.raises(ValueError, match="parameter group 1: betas=\\(0.9, 1.5\\) must be two numbers in \\[0, 1\\)"):
        Lion([{"params": [a]}, {"params": [b], "betas": (0.9, 1.5)}])
    with pytest.raises(TypeError, match="betas=0.9 must be two numbers"):
        Lion([a], betas=0.9)
    opt = Lion([a], lr=0.1)
    opt.param_groups[0]["weight_decay"] = -0.1
    a.grad = torch.ones(2)
    with pytest.raises(ValueError, match="parameter group 0: weight_decay=-0.1"):
        opt.step()
    assert torch.equal(a, torch.zeros(2))
