"""Tiger: the reference pseudo-code of bojone/tiger, foreach ==
loop bitwise, Lion with beta1 = beta2 when the per-parameter rules are off, accumulation inside
the momentum == the mean gradient == Accelerate's accumulation, the NaN/Inf guard with an injected
NaN and an injected Inf, per-kind learning rates, the embedding anomaly and lazy rows, the
zero-init floor, loss-scale invariance, one state buffer per parameter."""

import logging
import math

import pytest
import torch
from lion_pytorch import Lion as PeerLion

from genlab.optim import Tiger, param_groups

KIND_SHAPES = [("matrix", (6, 5)), ("embedding", (10, 4)), ("gain", (5,)), ("bias", (5,)), ("matrix", (3, 2, 2))]


def _tensors(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for kind, shape in KIND_SHAPES:
        t = torch.randn(shape, generator=g, dtype=dtype)
        out.append((t * 0.1 + 1 if kind == "gain" else t).requires_grad_())
    return out


def _groups(params, wd):
    return [{"params": [p], "kind": kind, "weight_decay": wd if kind in ("matrix", "embedding") else 0.0}
            for p, (kind, _) in zip(params, KIND_SHAPES)]


def _grads(steps, dtype, bad=(), seed=1):
    """Random gradients; embedding rows 7..9 never receive one; ``bad`` = [(step, tensor, value)]."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        grads = [torch.randn(shape, generator=g, dtype=dtype) for _, shape in KIND_SHAPES]
        grads[1][7:] = 0
        for step, i, value in bad:
            if step == t:
                grads[i].view(-1)[3] = value
        out.append(grads)
    return out


def _run(opt_fn, grads_seq, dtype, wd=0.01):
    params = _tensors(dtype)
    opt = opt_fn(_groups(params, wd))
    for grads in grads_seq:
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
    return params, opt


def reference(grads_seq, dtype, lr, beta, wd, k=1, shrink=0.99, rms_floor=0.0, nan_only=True):
    """bojone/tiger's update, one tensor at a time."""
    params = [p.detach().clone() for p in _tensors(dtype)]
    ms = [torch.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_seq):
        b1, b2 = (beta if t % k == 0 else 1.0), (1 - beta) / k
        lr_t = lr if (t + 1) % k == 0 else 0.0
        for i, ((kind, _), g) in enumerate(zip(KIND_SHAPES, grads)):
            p = params[i]
            bad = bool(torch.isnan(g).any()) if nan_only else not bool(torch.isfinite(g).all())
            if not bad:
                ms[i] = b1 * ms[i] + b2 * g
            if kind in ("bias", "gain"):
                eta, lam, c = 0.5 * lr_t, 0.0, (1.0 if kind == "gain" else 0.0)
            elif kind == "embedding":
                eta, lam, c = lr_t * p.square().mean(-1, keepdim=True).sqrt().clamp_min(rms_floor), wd, 0.0
            else:
                eta, lam, c = lr_t * max(p.square().mean().sqrt().item(), rms_floor), wd, 0.0
            params[i] = (p - c) * shrink + c if bad else p - eta * (torch.sign(ms[i]) + lam * p)
    return params, ms


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("nan_only", [True, False])
def test_equals_the_reference_pseudo_code_float64(k, nan_only, foreach):
    grads = _grads(9, torch.float64, bad=[(2, 0, math.nan), (4, 3, math.inf), (5, 2, -math.inf)])
    ours, opt = _run(lambda g: Tiger(g, lr=0.02, beta=0.9, weight_decay=0.01, grad_accum_steps=k, rms_floor=0.0,
                                     nan_only=nan_only, foreach=foreach), grads, torch.float64)
    ref, ref_m = reference(grads, torch.float64, 0.02, 0.9, 0.01, k=k, nan_only=nan_only)
    for i, (p, r, m) in enumerate(zip(ours, ref, ref_m)):
        if nan_only and i in (2, 3):
            # An Inf let through makes m infinite in both; the next lerp (k = 1) turns it into NaN
            # where the reference's beta * m + (1 - beta) g stays inf: that tensor is lost either way.
            assert not torch.isfinite(opt.state[p]["exp_avg"]).all() and not torch.isfinite(m).all()
            continue
        torch.testing.assert_close(p.detach(), r, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(opt.state[p]["exp_avg"], m, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("lazy", [False, True])
def test_foreach_equals_the_loop_bitwise(k, lazy):
    if lazy and k > 1:
        return
    grads = _grads(7, torch.float32, bad=[(3, 0, math.nan)])
    kw = dict(lr=0.01, grad_accum_steps=k, lazy_embeddings=lazy)
    a, oa = _run(lambda g: Tiger(g, foreach=True, **kw), grads, torch.float32)
    b, ob = _run(lambda g: Tiger(g, foreach=False, **kw), grads, torch.float32)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(torch.equal(oa.state[x]["exp_avg"], ob.state[y]["exp_avg"]) for x, y in zip(a, b))


def test_without_relative_rates_tiger_is_lion_with_equal_betas():
    grads = _grads(6, torch.float64)
    ours, _ = _run(lambda g: Tiger(g, lr=3e-3, beta=0.95, weight_decay=0.2, relative=False, foreach=True), grads,
                   torch.float64, wd=0.2)
    peer, _ = _run(lambda g: PeerLion(g, lr=3e-3, betas=(0.95, 0.95), weight_decay=0.2), grads, torch.float64, wd=0.2)
    assert all(torch.equal(x, y) for x, y in zip(ours, peer))


def test_accumulating_in_the_momentum_equals_the_mean_gradient():
    micro = _grads(6, torch.float64)
    windows = [[sum(g[i] for g in micro[w:w + 3]) / 3 for i in range(len(KIND_SHAPES))] for w in (0, 3)]
    inside, _ = _run(lambda g: Tiger(g, lr=0.01, grad_accum_steps=3), micro, torch.float64)
    mean, _ = _run(lambda g: Tiger(g, lr=0.01), windows, torch.float64)
    for x, y in zip(inside, mean):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_accelerate_gradient_accumulation_gives_the_same_update():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 1))
    copy = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 1))
    copy.load_state_dict(model.state_dict())
    xs, ys = torch.randn(6, 5, 4), torch.randn(6, 5, 1)
    try:
        acc = Accelerator(cpu=True, gradient_accumulation_steps=3)
        opt = Tiger(param_groups(model, 0.01), lr=0.01)
        model, opt = acc.prepare(model, opt)
        for x, y in zip(xs, ys):
            with acc.accumulate(model):
                acc.backward((model(x) - y).square().mean())
                opt.step()
                opt.zero_grad()
    finally:
        AcceleratorState._reset_state()
        GradientState._reset_state()
    ref = Tiger(param_groups(copy, 0.01), lr=0.01, grad_accum_steps=3)
    for x, y in zip(xs, ys):
        (copy(x) - y).square().mean().backward()
        ref.step()
        ref.zero_grad()
    for p, q in zip(model.parameters(), copy.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_loss_scale_does_not_change_the_trajectory():
    grads = _grads(5, torch.float32)
    a, _ = _run(lambda g: Tiger(g, lr=0.01), grads, torch.float32)
    b, _ = _run(lambda g: Tiger(g, lr=0.01), [[x * 1000 for x in gs] for gs in grads], torch.float32)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("bad_value", [math.nan, math.inf])
@pytest.mark.parametrize("tensor", [0, 2])  # a matrix (centre 0) and a norm gain (centre 1)
def test_non_finite_gradient_shrinks_that_tensor_only(bad_value, tensor, caplog):
    grads = _grads(3, torch.float32)
    clean, _ = _run(lambda g: Tiger(g, lr=0.01), grads, torch.float32)
    grads[2][tensor].view(-1)[1] = bad_value
    params = _tensors(torch.float32)
    opt = Tiger([{**g, "names": [f"p{i}"]} for i, g in enumerate(_groups(params, 0.01))], lr=0.01)
    for grads_t in grads[:2]:
        for p, g in zip(params, grads_t):
            p.grad = g.clone()
        opt.step()
    before, m_before = params[tensor].detach().clone(), opt.state[params[tensor]]["exp_avg"].clone()
    for p, g in zip(params, grads[2]):
        p.grad = g.clone()
    with caplog.at_level(logging.WARNING, logger="genlab.optim.tiger"):
        opt.step()
    c = 1.0 if tensor == 2 else 0.0
    torch.testing.assert_close(params[tensor].detach(), (before - c) * 0.99 + c)
    assert torch.equal(opt.state[params[tensor]]["exp_avg"], m_before)
    assert all(torch.equal(p, q) for i, (p, q) in enumerate(zip(params, clean)) if i != tensor)
    assert opt.last_skipped == [f"p{tensor}"] and f"non-finite gradient in p{tensor}" in caplog.text


def test_nan_only_lets_an_inf_through_like_the_reference():
    grads = _grads(1, torch.float32, bad=[(0, 3, math.inf)])
    params, opt = _run(lambda g: Tiger(g, lr=0.01, nan_only=True), grads, torch.float32)
    assert opt.last_skipped == [] and not torch.isfinite(opt.state[params[3]]["exp_avg"]).all()


def test_per_kind_learning_rates_on_the_first_step():
    params = _tensors(torch.float64)
    before = [p.detach().clone() for p in params]
    grads = _grads(1, torch.float64)[0]
    opt = Tiger(_groups(params, 0.1), lr=0.01, rms_floor=0.0)
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()
    s = [torch.sign(g) for g in grads]  # m = (1 - beta) g after one step
    for i in (2, 3):  # gain and bias: 0.5 lr, no decay
        torch.testing.assert_close(params[i].detach(), before[i] - 0.005 * s[i])
    rms = before[0].square().mean().sqrt()
    torch.testing.assert_close(params[0].detach(), before[0] - 0.01 * rms * (s[0] + 0.1 * before[0]))
    row_rms = before[1].square().mean(-1, keepdim=True).sqrt()
    torch.testing.assert_close(params[1].detach(), before[1] - 0.01 * row_rms * (s[1] + 0.1 * before[1]))


def test_rare_rows_drift_to_minus_sign_over_lambda_unless_lazy():
    """Su 9736: a row whose gradient stops keeps sign(m) and walks to -sign(m)/lambda = -100 here."""
    def train(lazy):
        table = torch.full((2, 4), 0.5, dtype=torch.float64, requires_grad=True)
        opt = Tiger([{"params": [table], "kind": "embedding"}], lr=0.1, weight_decay=0.01, lazy_embeddings=lazy)
        table.grad = torch.ones(2, 4, dtype=torch.float64)  # both rows seen once: m > 0
        opt.step()
        for _ in range(400):
            table.grad = torch.zeros(2, 4, dtype=torch.float64)
            table.grad[0] = 1e-3 * torch.randn(4, dtype=torch.float64)  # row 0 stays in use
            opt.step()
        return table.detach()[1]

    start = torch.full((4,), 0.5 - 0.1 * 0.5 * (1 + 0.01 * 0.5), dtype=torch.float64)  # after the first step
    torch.testing.assert_close(train(False), torch.full((4,), -100.0, dtype=torch.float64), rtol=1e-3, atol=0)
    torch.testing.assert_close(train(True), start)


def test_zero_initialised_matrix_moves_only_with_the_rms_floor():
    for floor, moves in [(0.0, False), (1e-3, True)]:
        w = torch.zeros(4, 4, requires_grad=True)
        opt = Tiger([w], lr=0.01, rms_floor=floor)
        w.grad = torch.randn(4, 4)
        opt.step()
        assert bool(w.detach().abs().sum() > 0) == moves


def test_groups_without_kind_use_the_ndim_rule_and_state_is_one_buffer():
    w, b = torch.ones(3, 3, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = Tiger([w, b], lr=0.1, weight_decay=0.0)
    w.grad, b.grad = torch.ones(3, 3), torch.ones(3)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3, 3), 0.9))  # matrix: lr * RMS(w) = 0.1
    torch.testing.assert_close(b.detach(), torch.full((3,), -0.05))  # bias: 0.5 lr
    assert all(list(opt.state[p]) == ["exp_avg"] for p in (w, b))


def test_state_dict_resumes_the_micro_step_counter():
    grads = _grads(5, torch.float32)
    full, _ = _run(lambda g: Tiger(g, lr=0.01, grad_accum_steps=2), grads, torch.float32)
    part, opt = _run(lambda g: Tiger(g, lr=0.01, grad_accum_steps=2), grads[:3], torch.float32)
    params = [p.detach().clone().requires_grad_() for p in part]
    resumed = Tiger(_groups(params, 0.01), lr=0.01, grad_accum_steps=2)
    resumed.load_state_dict(opt.state_dict())
    for grads_t in grads[3:]:
        for p, g in zip(params, grads_t):
            p.grad = g.clone()
        resumed.step()
    assert all(torch.equal(x, y) for x, y in zip(full, params))


def test_bad_arguments():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="kind='weights'"):
        Tiger([{"params": p, "kind": "weights"}])
    with pytest.raises(ValueError, match="lazy_embeddings needs grad_accum_steps=1"):
        Tiger(p, lazy_embeddings=True, grad_accum_steps=2)
    with pytest.raises(ValueError, match="grad_accum_steps=0"):
        Tiger(p, grad_accum_steps=0)
    with pytest.raises(ValueError, match="beta=1.0"):
        Tiger(p, beta=1.0)


@pytest.mark.parametrize("foreach", [True, False])
def test_without_relative_rates_a_plain_parameter_list_decays_vectors_like_lion(foreach):
    """A plain list has no kinds: with the per-parameter rules off every tensor, 1-D included, decays
    by weight_decay as in Lion with beta1 = beta2 (lion-pytorch, float64 exact)."""
    grads = _grads(6, torch.float64)

    def run(make):
        params = _tensors(torch.float64)
        opt = make(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
        return params

    ours = run(lambda ps: Tiger(ps, lr=3e-3, beta=0.95, weight_decay=0.2, relative=False, foreach=foreach))
    peer = run(lambda ps: PeerLion(ps, lr=3e-3, betas=(0.95, 0.95), weight_decay=0.2))
    assert all(torch.equal(x, y) for x, y in zip(ours, peer))


def test_every_parameter_group_is_validated_with_its_index():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="parameter group 1: beta=1.5 must be in \\[0, 1\\)"):
        Tiger([{"params": [a]}, {"params": [b], "beta": 1.5}])
    with pytest.raises(ValueError, match="parameter group 0: lr=-1.0 must be a finite number >= 0"):
        Tiger([{"params": [a], "lr": -1.0}])
    with pytest.raises(ValueError, match="parameter group 0: shrink_ratio=0 must be in \\(0, 1\\]"):
        Tiger([{"params": [a], "shrink_ratio": 0}])
    with pytest.raises(TypeError, match="beta=\\(0.9, 0.99\\) must be one number .* \\(Lion takes two betas\\)"):
        Tiger([a], beta=(0.9, 0.99))
    opt = Tiger([a], lr=0.1)
    opt.param_groups[0]["lr"] = float("nan")  # e.g. set by a scheduler
    a.grad = torch.ones(2)
    with pytest.raises(ValueError, match="parameter group 0: lr=nan"):
        opt.step()
