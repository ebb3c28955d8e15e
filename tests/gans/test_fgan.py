"""f-GAN divergence table: conjugates against their definition (scipy), stable forms, the optimal
critic's bound against closed-form divergences, a trained critic, and bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from genlab.gans import DIVERGENCES, FDivergence, NonFiniteCriticError

F64 = torch.float64

# closed forms at test points (checked against a NumPy reference)
SPEC_POINTS = [("kl", 1.5, 1.648721), ("reverse_kl", -2.0, -1.693147), ("pearson", -1.5, -0.9375),
               ("neyman", 0.7, 0.904555), ("hellinger", 0.7, 2.333333), ("js", 0.6, 1.726639),
               ("gan", -0.69, 0.696304), ("gan", -0.1, 2.352168)]


@pytest.mark.parametrize("key, t, expected", SPEC_POINTS)
def test_conjugate_matches_the_spec_test_points(key, t, expected):
    assert FDivergence(key).conjugate(torch.tensor(t, dtype=F64)).item() == pytest.approx(expected, abs=1e-6)


def _sup_over_u(div: FDivergence, t: float) -> float:
    """``sup_{u > 0} (tu − f(u))`` by a grid over ``log u ∈ [−30, 30]`` refined with scipy's bounded Brent."""
    def objective(log_u):
        u = torch.tensor(math.exp(log_u), dtype=F64)
        return -(t * u - div.f(u)).item()

    grid = torch.linspace(-30, 30, 6001, dtype=F64)
    u = grid.exp()
    best = int((t * u - div.f(u)).argmax())
    lo, hi = grid[max(best - 1, 0)].item(), grid[min(best + 1, 6000)].item()
    res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13})
    return max(-res.fun, (t * u - div.f(u)).max().item())


# points inside each conjugate's domain, away from where the supremum escapes to u -> 0 or u -> inf
CONJ_POINTS = {
    "tv": [-0.4, -0.1, 0.0, 0.3, 0.45], "kl": [-3.0, 0.0, 1.0, 2.5], "reverse_kl": [-5.0, -1.0, -0.2],
    "pearson": [-1.9, -0.5, 0.0, 3.0], "neyman": [-8.0, -1.0, 0.0, 0.9], "hellinger": [-5.0, -0.5, 0.0, 0.8],
    "js": [-4.0, 0.0, 0.5, 0.65], "gan": [-5.0, -1.0, -0.2],
}


@pytest.mark.parametrize("key", DIVERGENCES)
def test_conjugate_equals_its_definition(key):
    div = FDivergence(key)
    for t in CONJ_POINTS[key]:
        closed = div.conjugate(torch.tensor(t, dtype=F64)).item()
        assert closed == pytest.approx(_sup_over_u(div, t), rel=1e-6, abs=1e-9), (key, t)


def test_pearson_formula_is_the_conjugate_only_above_minus_two():
    """Over u >= 0 the true conjugate is −1 below t = −2; f-GAN (and genlab) use t²/4 + t on all of ℝ."""
    div = FDivergence("pearson")
    assert _sup_over_u(div, -3.0) == pytest.approx(-1.0, abs=1e-9)
    assert div.conjugate(torch.tensor(-3.0, dtype=F64)).item() == pytest.approx(-0.75)


@pytest.mark.parametrize("key", DIVERGENCES)
def test_stable_form_equals_the_composition_and_activation_maps_into_the_domain(key):
    div = FDivergence(key)
    v = torch.linspace(-8, 8, 161, dtype=F64)
    composed = div.conjugate(div.activation(v))
    torch.testing.assert_close(div.conj_of_activation(v), composed, rtol=1e-9, atol=1e-12)
    low, high, closed = div.domain
    g = div.activation(v)
    assert bool(((g >= low) & (g <= high)).all() if closed else ((g > low) & (g < high)).all())
    g = div.activation(torch.linspace(-40, 40, 801, dtype=F64))  # saturated values may reach the boundary in float
    assert bool(((g >= low) & (g <= high)).all())


@pytest.mark.parametrize("key, f_prime_1", [("kl", 1.0), ("reverse_kl", -1.0), ("gan", -0.693147), ("pearson", 0.0),
                                             ("neyman", 0.0), ("hellinger", 0.0), ("js", 0.0), ("tv", 0.0)])
def test_threshold_is_f_prime_at_one(key, f_prime_1):
    div = FDivergence(key)
    assert div.threshold == pytest.approx(f_prime_1, abs=1e-6)
    if key != "tv":  # tv is not differentiable at 1
        h = torch.tensor([1 - 1e-6, 1 + 1e-6], dtype=F64)
        assert ((div.f(h[1]) - div.f(h[0])) / 2e-6).item() == pytest.approx(f_prime_1, abs=1e-6)
    assert div.optimal_critic(torch.zeros((), dtype=F64)).item() == pytest.approx(div.threshold, abs=1e-12)


# ---------------------------------------------------------------- property tests over the domain

@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(DIVERGENCES), log_r=st.floats(-6, 6), u=st.floats(1e-3, 1e3))
def test_fenchel_young_equality_at_the_optimal_critic(key, log_r, u):
    """f(r) + f*(T*) = T*·r at T* = f'(r) (the supremum is attained at u = r), and f(u) + f*(T*) >= T*·u."""
    div = FDivergence(key)
    lr = torch.tensor(log_r, dtype=F64)
    r, t = lr.exp(), div.optimal_critic(lr)
    lhs = div.f(r) + div.conjugate(t)
    assert lhs.item() == pytest.approx((t * r).item(), rel=1e-9, abs=1e-9)
    u = torch.tensor(u, dtype=F64)
    assert (div.f(u) + div.conjugate(t) - t * u).item() >= -1e-9 * (1 + abs((t * u).item()))


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(DIVERGENCES), v=st.floats(-30, 30), u=st.floats(1e-4, 1e4))
def test_conjugate_of_the_activation_bounds_every_u(key, v, u):
    """Fenchel-Young over the whole range of the activation: f(u) + f*(g_f(v)) >= g_f(v)·u."""
    div = FDivergence(key)
    v, u = torch.tensor(v, dtype=F64), torch.tensor(u, dtype=F64)
    t = div.activation(v)
    gap = div.f(u) + div.conj_of_activation(v) - t * u
    assert gap.item() >= -1e-9 * (1 + abs((t * u).item()))


# ---------------------------------------------------------------- the bound at the optimal critic

def _normal_pdf(x, mean):
    return torch.exp(-0.5 * (x - mean) ** 2) / math.sqrt(2 * math.pi)


GAUSSIAN_CLOSED_FORMS = {  # p = N(1, 1), q = N(0, 1)
    "kl": 0.5, "reverse_kl": 0.5, "pearson": math.e - 1, "neyman": math.e - 1,
    "hellinger": 2 * (1 - math.exp(-1 / 8)), "tv": math.erf(0.5 / math.sqrt(2)),
}


@pytest.mark.parametrize("key", sorted(GAUSSIAN_CLOSED_FORMS))
def test_optimal_critic_attains_the_closed_form_on_gaussians(key):
    """E_P[T*] − E_Q[f*(T*)] with T* = f'(p/q), p = N(1,1), q = N(0,1), by quadrature, equals D_f."""
    div = FDivergence(key)
    x = torch.linspace(-16, 17, 40_001, dtype=F64)  # trapezoid: spectrally accurate here
    p, q = _normal_pdf(x, 1.0), _normal_pdf(x, 0.0)
    log_ratio = x - 0.5
    t = div.optimal_critic(log_ratio)
    bound = torch.trapezoid(p * t, x) - torch.trapezoid(q * div.conjugate(t), x)
    assert bound.item() == pytest.approx(GAUSSIAN_CLOSED_FORMS[key], rel=1e-7)
    if key != "tv":  # the same through the logits and the stable form
        v = div.optimal_logit(log_ratio)
        via_logits = torch.trapezoid(p * div.activation(v), x) - torch.trapezoid(q * div.conj_of_activation(v), x)
        assert via_logits.item() == pytest.approx(GAUSSIAN_CLOSED_FORMS[key], rel=1e-7)


def _discrete_closed_forms(p, q):
    """Textbook formulas, written independently of the f table."""
    m = (p + q) / 2
    js = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
    return {
        "kl": (p * (p / q).log()).sum(), "reverse_kl": (q * (q / p).log()).sum(),
        "pearson": ((p - q) ** 2 / q).sum(), "neyman": ((q - p) ** 2 / p).sum(),
        "hellinger": ((p.sqrt() - q.sqrt()) ** 2).sum(), "tv": 0.5 * (p - q).abs().sum(),
        "js": 2 * js, "gan": 2 * js - math.log(4),
    }


@pytest.mark.parametrize("key", DIVERGENCES)
def test_optimal_critic_attains_the_closed_form_on_discrete_distributions(key):
    p = torch.tensor([0.2, 0.5, 0.3], dtype=F64)
    q = torch.tensor([0.4, 0.35, 0.25], dtype=F64)
    div = FDivergence(key)
    t = div.optimal_critic((p / q).log())
    bound = (p * t).sum() - (q * div.conjugate(t)).sum()
    assert bound.item() == pytest.approx(_discrete_closed_forms(p, q)[key].item(), rel=1e-12)
    worse = (p * (0.9 * t)).sum() - (q * div.conjugate(0.9 * t)).sum()  # any other critic is below
    assert worse.item() < bound.item()


def _stratified_normal(n, mean):
    u = (torch.arange(n, dtype=F64) + 0.5) / n
    return mean + math.sqrt(2) * torch.erfinv(2 * u - 1)


@pytest.mark.parametrize("key, slope, intercept", [("kl", 1.0, 0.5), ("reverse_kl", 1.0, -0.5), ("hellinger", 0.5, -0.25),
                                                    ("js", 1.0, -0.5), ("gan", 1.0, -0.5)])
def test_trained_critic_converges_to_the_optimal_critic(key, slope, intercept):
    """Spec §1.5: a linear critic trained with d_loss on p = N(1,1) vs q = N(0,1) reaches V*(x) = f-specific
    function of log(p/q) = x − 0.5, and its bound reaches the divergence. (Neyman's e^{−2x} moments are
    too heavy-tailed for a finite sample to pin its optimum this closely.)"""
    div = FDivergence(key)
    real, fake = _stratified_normal(2000, 1.0), _stratified_normal(2000, 0.0)
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=100, tolerance_grad=1e-10, tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = div.d_loss(w[0] * real + w[1], w[0] * fake + w[1])
        loss.backward()
        return loss

    opt.step(closure)
    assert w[0].item() == pytest.approx(slope, abs=2e-2) and w[1].item() == pytest.approx(intercept, abs=2e-2)
    if key in GAUSSIAN_CLOSED_FORMS:
        bound = -div.d_loss(w[0] * real + w[1], w[0] * fake + w[1]).item()
        assert bound == pytest.approx(GAUSSIAN_CLOSED_FORMS[key], rel=2e-2)


# ---------------------------------------------------------------- losses, precision and bad input

def test_losses_are_the_bound_and_the_two_generator_forms():
    div = FDivergence("gan")
    v_real, v_fake = torch.randn(16, dtype=F64), torch.randn(16, dtype=F64)
    bound = torch.log(torch.sigmoid(v_real)).mean() + torch.log1p(-torch.sigmoid(v_fake)).mean()
    torch.testing.assert_close(div.d_loss(v_real, v_fake), -bound)  # the original GAN critic
    torch.testing.assert_close(div.g_loss(v_fake, "saddle"), torch.log1p(-torch.sigmoid(v_fake)).mean())
    torch.testing.assert_close(div.g_loss(v_fake, "nonsat"), -torch.log(torch.sigmoid(v_fake)).mean())
    assert div.g_loss(v_fake[:, None]).shape == ()  # (B, 1) logits are accepted


def test_losses_run_in_float32_under_bf16_autocast():
    div = FDivergence("kl")
    lin = torch.nn.Linear(4, 1)
    x = torch.randn(32, 4) * 4
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = lin(x)
        assert v.dtype == torch.bfloat16
        loss = div.d_loss(v, v.flip(0))
    assert loss.dtype == torch.float32
    expected = -(v.float().mean() - torch.exp(v.float().flip(0) - 1).mean())
    torch.testing.assert_close(loss, expected)


def test_logit_clip_is_explicit():
    v = torch.tensor([200.0, 0.0])
    assert not torch.isfinite(FDivergence("kl").d_loss(v, v))  # exp(199) overflows float32 without clipping
    assert torch.isfinite(FDivergence("kl", logit_clip=20).d_loss(v, v))
    with pytest.raises(ValueError, match="logit_clip=-1"):
        FDivergence("kl", logit_clip=-1)


def test_aliases_and_the_naming_clash_are_documented():
    assert FDivergence("squared_hellinger").key == "hellinger" and FDivergence("chi2_pearson").key == "pearson"
    assert "(p − q)²/q" in FDivergence("pearson").divergence and "(q − p)²/p" in FDivergence("neyman").divergence


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="unknown divergence 'wasserstein'.*expected one of"):
        FDivergence("wasserstein")
    with pytest.raises(TypeError, match="must be a string"):
        FDivergence(3)
    div = FDivergence("js")
    with pytest.raises(NonFiniteCriticError, match="v_fake contains NaN or Inf"):
        div.d_loss(torch.zeros(4), torch.tensor([0.0, float("nan"), 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"v_real has shape \(4,\) and v_fake has shape \(3,\)"):
        div.d_loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"one critic output per sample.*\(4, 2\)"):
        div.g_loss(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="mode='minimax' is not supported"):
        div.g_loss(torch.zeros(4), mode="minimax")
    with pytest.raises(ValueError, match=r"conjugate of 'gan' is defined on \(-inf, 0.0\)"):
        FDivergence("gan").conjugate(torch.tensor([0.5]))
