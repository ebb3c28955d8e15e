"""ODE samplers on the closed-form 1-D gaussian problem (flows spec section 7), NFE accounting,
guidance, time grids, and clear errors for bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab.flows import METHODS, guidance_scale_from_w, sample, uniform_grid, w_from_guidance_scale
from genlab.flows.samplers import FIXED_METHODS
from tests.flows.gaussian1d import MU, S, TARGET, v_reflow, v_star, x0

# Hand-computed table: samples of x_0 = [-1, 0, 1] after N steps (x_0 = 0 maps to 3 by symmetry).
TABLE = {
    ("euler", 1): [3, 3, 3], ("euler", 2): [2.2, 3, 3.8], ("euler", 4): [1.63784, 3, 4.36216],
    ("euler", 10): [1.27687, 3, 4.72313], ("euler", 100): [1.02942, 3, 4.97058],
    ("midpoint", 1): [1.4, 3, 4.6], ("midpoint", 2): [1.02245, 3, 4.97755], ("midpoint", 4): [1.00684, 3, 4.99316],
    ("midpoint", 10): [1.00046, 3, 4.99954], ("midpoint", 100): [1.0000005, 3, 4.9999995],
    ("heun", 1): [2.5, 3, 3.5], ("heun", 2): [1.47, 3, 4.53], ("heun", 4): [1.09028, 3, 4.90972],
    ("heun", 10): [1.01172, 3, 4.98828], ("heun", 100): [1.0000962, 3, 4.9999038],
    ("rk4", 1): [1.02, 3, 4.98], ("rk4", 2): [0.99130, 3, 5.00870], ("rk4", 4): [1.00082, 3, 4.99918],
    ("rk4", 10): [1.0000093, 3, 4.9999907], ("rk4", 100): [1, 3, 5],
}
ORDER = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


class Counting:
    """A model that counts its own calls and the rows it evaluated."""

    def __init__(self, fn):
        self.fn, self.calls, self.rows = fn, 0, 0

    def __call__(self, x, t, *labels):
        self.calls += 1
        self.rows += len(x)
        return self.fn(x, t)


@pytest.mark.parametrize("method, steps", sorted(TABLE))
def test_matches_the_spec_table(method, steps):
    out = sample(v_star, x0(), steps, method)
    # the table has 5 decimals (more near the target): agree to half a unit of its last digit
    assert out.samples.flatten().tolist() == pytest.approx(TABLE[method, steps], abs=6e-6)
    assert out.nfe == steps * FIXED_METHODS[method]


@pytest.mark.parametrize("method", ORDER)
def test_error_shrinks_at_the_method_order(method):
    errors = [abs(sample(v_star, x0(), n, method).samples[0, 0].item() - TARGET[0]) for n in (1, 2, 4, 10, 100)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    observed = math.log10(errors[3] / errors[4])  # N = 10 -> 100: the slope of log error against log N
    assert observed >= ORDER[method] - 0.1, (method, observed)
    if method == "euler":
        assert observed == pytest.approx(1, abs=0.1)  # first order, not better


def test_float32_state_reaches_the_table_too():
    out = sample(v_star, x0(torch.float32), 10, "rk4")
    assert out.samples.dtype == torch.float32
    assert out.samples.flatten().tolist() == pytest.approx(TABLE["rk4", 10], abs=1e-5)


def test_dopri5_reaches_the_exact_map_and_counts_its_calls():
    model = Counting(v_star)
    out = sample(model, x0(), method="dopri5", rtol=1e-7, atol=1e-7)
    assert out.samples.flatten().tolist() == pytest.approx(TARGET, abs=1e-5)
    assert out.nfe == model.calls > 6  # measured, not configured


@pytest.mark.parametrize("method, steps", [("rk4", 100), ("heun", 200), ("dopri5", None)])
def test_backward_integration_inverts_forward(method, steps):
    forward = sample(v_star, x0(), steps, method, rtol=1e-9, atol=1e-9)
    grid = torch.linspace(1, 0, (steps or 1) + 1, dtype=torch.float64)
    back = sample(v_star, forward.samples, method=method, time_grid=grid, rtol=1e-9, atol=1e-9)
    assert back.samples.flatten().tolist() == pytest.approx([-1, 0, 1], abs=1e-5)


def test_reflowed_field_is_exact_in_one_euler_step():
    assert sample(v_reflow, x0(), 1, "euler").samples.flatten().tolist() == pytest.approx(TARGET, abs=1e-12)


@pytest.mark.parametrize("method", list(FIXED_METHODS))
def test_nfe_is_measured_and_doubles_with_guidance(method):
    model = Counting(v_star)
    plain = sample(model, x0(), 3, method)
    assert plain.nfe == model.calls == 3 * FIXED_METHODS[method]
    model = Counting(v_star)
    guided = sample(model, x0(), 3, method, labels=torch.zeros(3, dtype=torch.long), guidance_scale=2.0, null_label=5)
    assert guided.nfe == 2 * plain.nfe  # a guided call evaluates the conditional and unconditional halves
    assert model.calls == plain.nfe and model.rows == model.calls * 2 * 3  # one forward per stage, on the doubled batch


def test_guidance_scale_converts_from_the_w_convention():
    assert guidance_scale_from_w(0.2) == pytest.approx(1.2)  # Meta's cfg_scale 0.2 is s = 1.2
    assert w_from_guidance_scale(guidance_scale_from_w(0.7)) == pytest.approx(0.7)


def test_guidance_combines_conditional_and_unconditional():
    def model(x, t, labels):  # the velocity is the label itself, so guidance is easy to read off
        return labels[:, None].to(x.dtype).expand_as(x)

    x = torch.zeros(2, 1)
    labels = torch.tensor([4, 4])
    for s in (1.0, 0.0, 3.0):
        out = sample(model, x, 1, "euler", labels=labels, guidance_scale=s, null_label=1)
        assert out.samples.flatten().tolist() == pytest.approx([1 + s * (4 - 1)] * 2)  # v_u + s (v_c - v_u)


def test_trajectory_holds_every_grid_state():
    out = sample(v_star, x0(), 4, "heun", return_trajectory=True)
    assert out.trajectory.shape == (5, 3, 1)
    assert torch.equal(out.trajectory[0], x0()) and torch.equal(out.trajectory[-1], out.samples)
    assert torch.equal(out.times, uniform_grid(4, dtype=torch.float64))
    dopri = sample(v_star, x0(), 4, "dopri5", return_trajectory=True, rtol=1e-8, atol=1e-8)
    t = out.times[:, None, None]
    exact = t * MU + ((1 - t) ** 2 + t * t * S * S).sqrt() * x0()  # the monotone map x_0 -> x_t
    assert dopri.trajectory.shape == (5, 3, 1) and torch.allclose(dopri.trajectory, exact, atol=1e-6)


def test_custom_grid_with_diffusers_like_spacing():
    grid = torch.tensor([0.0, 0.3, 0.55, 0.75, 0.9, 0.999, 1.0], dtype=torch.float64)
    out = sample(v_star, x0(), method="euler", time_grid=grid)
    x = x0()
    for a, b in zip(grid[:-1], grid[1:]):  # Euler by hand on the same grid
        x = x + (b - a) * v_star(x, a.expand(3))
    assert torch.allclose(out.samples, x, atol=1e-12) and out.nfe == 6


def test_model_runs_under_autocast_while_the_state_stays_float32():
    net = torch.nn.Linear(3, 3)

    def model(x, t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return net(x)

    out = sample(model, torch.randn(4, 3), 2, "heun")
    assert out.samples.dtype == torch.float32


@pytest.mark.parametrize("kwargs, error, message", [
    ({"steps": 0}, ValueError, "steps=0 must be an integer >= 1"),
    ({"steps": -2}, ValueError, "steps=-2"),
    ({"steps": 2.5}, ValueError, "steps=2.5"),
    ({"steps": True}, ValueError, "steps=True"),
    ({"steps": 2, "method": "rk45"}, ValueError, "method='rk45' is not supported; expected one of"),
    ({"method": "euler"}, ValueError, "needs steps"),
    ({"steps": 2, "time_grid": torch.linspace(0, 1, 3)}, ValueError, "either steps=2 or time_grid"),
    ({"time_grid": torch.tensor([0.0, 0.5, 0.4, 1.0])}, ValueError, "strictly increasing"),
    ({"time_grid": torch.tensor([0.0, 1.5])}, ValueError, "in [0, 1]"),
    ({"time_grid": torch.zeros(2, 2)}, ValueError, "1-D with at least 2 times"),
    ({"time_grid": [0.0, 1.0]}, TypeError, "time_grid must be a 1-D tensor"),
    ({"steps": 2, "labels": torch.zeros(2, dtype=torch.long)}, ValueError, "labels must be a tensor of shape (B,) = (3,)"),
    ({"steps": 2, "guidance_scale": 2.0}, ValueError, "needs labels"),
    ({"steps": 2, "guidance_scale": 2.0, "labels": torch.zeros(3, dtype=torch.long)}, ValueError, "needs null_label"),
    ({"steps": 2, "guidance_scale": float("nan")}, ValueError, "guidance_scale=nan must be a finite number"),
    ({"method": "dopri5", "rtol": 0.0}, ValueError, "rtol=0.0 must be > 0"),
])
def test_bad_input_raises_clearly(kwargs, error, message):
    with pytest.raises(error) as info:
        sample(v_star, x0(), **kwargs)
    assert message in str(info.value)


def test_bad_states_and_models_raise_clearly():
    with pytest.raises(TypeError, match="x0 must be float32 or float64"):
        sample(v_star, x0().to(torch.bfloat16), 2)
    with pytest.raises(TypeError, match="x0 must be a tensor"):
        sample(v_star, [[0.0]], 2)
    with pytest.raises(ValueError, match=r"model returned \(3, 2\) for input of shape \(3, 1\)"):
        sample(lambda x, t: torch.cat([x, x], 1), x0(), 2)
    with pytest.raises(ValueError, match="model returned tuple"):
        sample(lambda x, t: (x,), x0(), 2)
    with pytest.raises(ValueError, match="model returned shape"):  # a guided model that drops the doubled batch
        sample(lambda x, t, y: x[: len(x) // 2], x0(), 2, labels=torch.zeros(3, dtype=torch.long), guidance_scale=2.0,
               null_label=1)


def test_adaptive_budget_exhaustion_is_a_clear_error():
    with pytest.raises(RuntimeError, match="raise max_num_steps=2"):
        sample(v_star, x0(), method="dopri5", rtol=1e-12, atol=1e-12, max_num_steps=2)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 4), shape=st.lists(st.integers(1, 3), min_size=1, max_size=3), steps=st.integers(1, 6),
       method=st.sampled_from(list(FIXED_METHODS)), trajectory=st.booleans())
def test_property_shapes_and_step_counts(batch, shape, steps, method, trajectory):
    x = torch.randn(batch, *shape)
    model = Counting(lambda x, t: -x * t.reshape(-1, *[1] * (x.ndim - 1)))
    out = sample(model, x, steps, method, return_trajectory=trajectory)
    assert out.samples.shape == x.shape and out.samples.dtype == x.dtype
    assert out.nfe == model.calls == steps * FIXED_METHODS[method]
    assert torch.equal(out.times, torch.linspace(0, 1, steps + 1))
    assert (out.trajectory is None) != trajectory
    if trajectory:
        assert out.trajectory.shape == (steps + 1, *x.shape)


@settings(max_examples=25, deadline=None)
@given(times=st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=8, unique=True),
       descending=st.booleans(), method=st.sampled_from(METHODS))
def test_property_any_monotone_grid_is_exact_for_a_constant_field(times, descending, method):
    grid = torch.tensor(sorted(times, reverse=descending), dtype=torch.float64)
    if grid.diff().abs().min() < 1e-9:
        return  # float64 could not keep these apart; not a grid
    x = torch.randn(3, 2, dtype=torch.float64)
    c = torch.tensor([1.5, -0.5], dtype=torch.float64)
    out = sample(lambda x, t: c.expand_as(x), x, method=method, time_grid=grid)
    assert torch.allclose(out.samples, x + c * (grid[-1] - grid[0]), atol=1e-9)
    if method in FIXED_METHODS:
        assert out.nfe == (len(grid) - 1) * FIXED_METHODS[method]


@pytest.mark.parametrize("method", METHODS)
def test_nan_from_x0_or_the_model_is_never_passed_through(method):
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="x0 contains NaN or Inf \\(1 of 8 values\\)"):
        sample(lambda x, t: x, x.index_put((torch.tensor([1]), torch.tensor([0])), torch.tensor(float("nan"))),
               steps=4, method=method)

    def diverges(x, t):  # NaN once t reaches 0.5
        return torch.where(t[:, None] >= 0.5, torch.full_like(x, float("nan")), torch.ones_like(x))

    where = "t=0.5, step [23] of 4" if method in FIXED_METHODS else "t=0.[5-9][0-9]*, an adaptive step"
    with pytest.raises(FloatingPointError, match=f"NaN or Inf velocities \\(8 of 8 values\\) at {where}"):
        sample(diverges, x, steps=4, method=method)
