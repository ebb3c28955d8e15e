"""The linear path, its velocity target, per-example times and the flow-matching loss."""

import pytest
import torch

from genlab.flows import (
    expand_time, flip_time, flow_matching_loss, interpolate, sample, sample_times, shift_time, velocity_target,
)
from genlab.flows.networks import VelocityMLP
from tests.flows.gaussian1d import MU, S, v_star


def test_path_runs_from_source_at_0_to_data_at_1_per_example():
    x0, x1 = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    assert torch.equal(interpolate(x0, x1, torch.zeros(4)), x0)
    assert torch.equal(interpolate(x0, x1, torch.ones(4)), x1)
    t = torch.tensor([0.1, 0.5, 0.7, 0.9])
    xt = interpolate(x0, x1, t)
    for i in range(4):  # each example at its own time
        assert torch.allclose(xt[i], (1 - t[i]) * x0[i] + t[i] * x1[i])


def test_target_is_the_time_derivative_of_the_path():
    x0, x1 = torch.randn(3, 2), torch.randn(3, 2)
    t = torch.rand(3, requires_grad=True)
    xt = interpolate(x0, x1, t)
    grads = torch.stack([torch.autograd.grad(xt[:, j].sum(), t, retain_graph=True)[0] for j in range(2)], 1)
    assert torch.allclose(grads, velocity_target(x0, x1))


@pytest.mark.parametrize("t", [torch.rand(4, 1), torch.rand(3), torch.rand(()), torch.rand(4, 1, 1, 1)])
def test_time_of_any_other_shape_than_batch_raises(t):
    with pytest.raises(ValueError, match=r"t must have shape \(B,\) = \(4,\)"):
        interpolate(torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3), t)


def test_mismatched_endpoints_and_non_tensor_times_raise():
    with pytest.raises(ValueError, match="same shape"):
        interpolate(torch.randn(4, 2), torch.randn(4, 3), torch.rand(4))
    with pytest.raises(TypeError, match="t must be a tensor"):
        expand_time(0.5, torch.randn(4, 2))


def test_time_distributions():
    g = torch.Generator().manual_seed(0)
    u = sample_times(20_000, "uniform", generator=g)
    assert u.shape == (20_000,) and u.dtype == torch.float32 and 0 <= u.min() and u.max() < 1
    assert u.mean().item() == pytest.approx(0.5, abs=0.01)
    ln = sample_times(20_000, "logit_normal", mean=0.5, std=0.8, generator=g)
    logit = torch.log(ln / (1 - ln))
    assert logit.mean().item() == pytest.approx(0.5, abs=0.02) and logit.std().item() == pytest.approx(0.8, abs=0.02)
    d = sample_times(2000, "discrete", steps=4, generator=g)
    assert sorted(d.unique().tolist()) == [0.0, 0.25, 0.5, 0.75]  # the times a 4-step Euler sampler visits
    assert torch.equal(sample_times(5, generator=torch.Generator().manual_seed(1)),
                       sample_times(5, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("kwargs, message", [
    ({"distribution": "beta"}, "distribution='beta' is not supported"),
    ({"distribution": "logit_normal", "std": 0.0}, "std=0.0"),
    ({"distribution": "discrete", "steps": 0}, "steps=0"),
])
def test_bad_time_distributions_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_times(8, **kwargs)


def test_loss_is_the_mean_squared_velocity_error():
    x0, x1, t = torch.randn(5, 2), torch.randn(5, 2), torch.rand(5)
    model = torch.nn.Linear(2, 2)
    loss = flow_matching_loss(lambda x, tt: model(x), x0, x1, t)
    expected = (model(interpolate(x0, x1, t)) - (x1 - x0)).square().mean()
    assert torch.allclose(loss, expected)
    assert flow_matching_loss(lambda x, tt: (x1 - x0), x0, x1, t).item() == 0  # the exact velocity of a fixed pair
    with pytest.raises(ValueError, match=r"model returned shape \(5, 1\)"):
        flow_matching_loss(lambda x, tt: x[:, :1], x0, x1, t)


def test_loss_under_bf16_autocast_forms_the_path_in_float32():
    seen = {}

    def model(x, t, labels):
        seen["dtype"], seen["labels"] = x.dtype, labels
        return x.to(torch.bfloat16)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = flow_matching_loss(model, torch.randn(3, 2), torch.randn(3, 2), torch.rand(3), torch.tensor([1, 2, 3]))
    assert seen["dtype"] == torch.float32 and seen["labels"].tolist() == [1, 2, 3] and loss.dtype == torch.float32


def test_flip_and_shift_time():
    t = torch.rand(10, dtype=torch.float64)
    assert torch.allclose(flip_time(flip_time(t)), t)
    sigma = 1 - t
    for s in (1.0, 3.0, 0.5):
        diffusers_sigma = s * sigma / (1 + (s - 1) * sigma)  # FlowMatchEulerDiscreteScheduler's static shift
        assert torch.allclose(shift_time(t, s), 1 - diffusers_sigma)
    with pytest.raises(ValueError, match="shift=0"):
        shift_time(t, 0)


def test_a_small_mlp_learns_the_closed_form_velocity():
    torch.manual_seed(0)
    net = VelocityMLP(dim=1, width=32, depth=2)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        x0 = torch.randn(256, 1, generator=g)
        x1 = MU + S * torch.randn(256, 1, generator=g)
        loss = flow_matching_loss(net, x0, x1, sample_times(256, generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = torch.linspace(0.05, 0.95, 10).repeat_interleave(20)
    sd = ((1 - t) ** 2 + t * t * S * S).sqrt()
    x = (t * MU + sd * torch.linspace(-1.5, 1.5, 20).repeat(10))[:, None]  # within 1.5 sd of each marginal
    with torch.no_grad():
        err = (net(x, t) - v_star(x, t)).abs()
    assert err.mean() < 0.1 * v_star(x, t).abs().mean(), err.mean()
    with torch.no_grad():
        out = sample(net, torch.tensor([[-1.0], [0.0], [1.0]]), 20, "heun").samples.flatten()
    assert out.tolist() == pytest.approx([1, 3, 5], abs=0.25)
