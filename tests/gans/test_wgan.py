"""Gradient-penalty critics: analytic cases (linear critics, one-step equivalence, the ratio
test), per-sample interpolation, mixed precision (bf16 autocast, fp16 with a GradScaler) and bad input."""

import math

import pytest
import torch
from torch import nn

from genlab.gans import FDivergence, NonFiniteCriticError, GradientPenaltyLoss, penalty_interpolates, proximal_loss, proximal_target, reflow_critic, wgan_gp

F64 = torch.float64


def _points_with_mean(mean, n=64, seed=0):
    """``n`` 2-D points with exactly the given mean (symmetric offsets)."""
    g = torch.Generator().manual_seed(seed)
    half = torch.randn(n // 2, 2, generator=g, dtype=F64)
    return torch.cat([half, -half]) + torch.tensor(mean, dtype=F64)


def _fit_linear_critic(objective):
    real, fake = _points_with_mean([3.0, -1.0]), _points_with_mean([0.0, 0.0], seed=1)
    w = torch.full((2,), 0.1, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def loss_at(weight):
        return objective.d_loss(lambda x: x @ weight, real, fake)[0]

    def closure():
        opt.zero_grad()
        loss = loss_at(w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), loss_at


def test_linear_critic_reflow_loss_is_minimised_at_the_mean_velocity():
    """Spec §5.1: L(w) = ½‖w‖² − wᵀ(m1 − m0), minimised at w* = m1 − m0 = [3, −1] with L* = −5."""
    w, loss_at = _fit_linear_critic(reflow_critic())
    torch.testing.assert_close(w, torch.tensor([3.0, -1.0], dtype=F64), rtol=0, atol=1e-8)
    assert loss_at(torch.tensor([3.0, -1.0], dtype=F64)).item() == pytest.approx(-5.0, abs=1e-12)


def test_linear_critic_wgan_gp_norm_and_direction():
    """Spec §5.2: λ = 10 puts the optimum along (m1 − m0)/‖m1 − m0‖ with norm 1 + ‖m1 − m0‖/(2λ)."""
    w, _ = _fit_linear_critic(wgan_gp())
    assert w.norm().item() == pytest.approx(1.158114, abs=1e-6)
    torch.testing.assert_close(w / w.norm(), torch.tensor([0.948683, -0.316228], dtype=F64), rtol=0, atol=1e-6)


def _mlp(sizes, seed):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.SiLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers).double()


def test_one_step_proximal_gradient_is_two_eps_times_the_wgan_generator_gradient():
    """Spec §5.3: ∇θ E‖G(z) − sg[G(z) + ε∇D(G(z))]‖² at θ = θτ equals 2ε ∇θ E[−D(G(z))]."""
    G, D = _mlp([3, 16, 16, 4], 0), _mlp([4, 16, 1], 1)
    z, eps = torch.randn(32, 3, dtype=F64), 1e-2
    target = proximal_target(lambda x: D(x)[:, 0], G(z).detach(), eps)
    prox = torch.autograd.grad(proximal_loss(G(z), target), list(G.parameters()))
    one_step = torch.autograd.grad(-D(G(z)).mean(), list(G.parameters()))
    for a, b in zip(prox, one_step):
        assert ((a - 2 * eps * b).norm() / (2 * eps * b).norm()).item() < 1e-5
    # an elementwise mse_loss would divide by the 4 features: a different step size
    mse = torch.autograd.grad(nn.functional.mse_loss(G(z), target), list(G.parameters()))
    torch.testing.assert_close(mse[0] * 4, prox[0])


def test_logistic_critic_is_the_log_ratio_and_one_monoflow_step_moves_samples_by_eps_times_the_mean_gap():
    """Spec §5.4: the `gan` critic between N(μp, I) and N(μq, I) is (μp − μq)ᵀx − (‖μp‖² − ‖μq‖²)/2."""
    mu_p, mu_q = torch.tensor([1.0, -0.5], dtype=F64), torch.tensor([-0.5, 0.5], dtype=F64)
    u = (torch.arange(60, dtype=F64) + 0.5) / 60
    axis = math.sqrt(2) * torch.erfinv(2 * u - 1)
    grid = torch.cartesian_prod(axis / axis.std(), axis / axis.std())  # stratified N(0, I), 3600 points
    real, fake = grid + mu_p, grid + mu_q
    div = FDivergence("gan")
    w = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=100, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def critic(x):
        return x @ w[:2] + w[2]

    def closure():
        opt.zero_grad()
        loss = div.d_loss(critic(real), critic(fake))
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(w[:2].detach(), mu_p - mu_q, rtol=0, atol=2e-2)
    assert w[2].item() == pytest.approx(-(mu_p.square().sum() - mu_q.square().sum()).item() / 2, abs=2e-2)
    eps = 0.1
    moved = proximal_target(critic, fake[:8], eps) - fake[:8]
    torch.testing.assert_close(moved, (eps * (mu_p - mu_q)).expand(8, 2), rtol=0, atol=3e-3)


def test_interpolation_is_per_sample():
    real, fake = torch.ones(6, 1, 2, 2), torch.zeros(6, 1, 2, 2)
    t = torch.linspace(0, 1, 6)
    x = penalty_interpolates(real, fake, t)
    torch.testing.assert_close(x, t.view(6, 1, 1, 1).expand(6, 1, 2, 2))  # x_t = (1 − t) fake + t real
    drawn = penalty_interpolates(real, fake)
    assert drawn.dtype == torch.float32 and len(drawn.flatten(1).mean(1).unique()) == 6


def test_penalties_and_the_zero_gradient_double_backward():
    grad = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    torch.testing.assert_close(reflow_critic().penalty(grad), torch.tensor([25.0, 0.0]))
    torch.testing.assert_close(wgan_gp().penalty(grad), torch.tensor([16.0, 1.0]))
    # a critic flat in x has ∇D = 0, where ‖g‖'s double backward is NaN without the eps (pytorch #2534)
    lin = nn.Linear(2, 1)
    nn.init.zeros_(lin.weight)
    loss, stats = wgan_gp().d_loss(lin, torch.randn(4, 2), torch.randn(4, 2))
    loss.backward()
    assert stats["gp"].item() == pytest.approx(1.0, abs=1e-5)
    assert all(torch.isfinite(p.grad).all() for p in lin.parameters())


def test_penalty_under_bf16_autocast_matches_float32():
    """Spec §5.6: within 1e-2 relative, and the penalty and loss come back in float32."""
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(8, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 1))
    real, fake, t = torch.randn(64, 8), torch.randn(64, 8), torch.rand(64)
    for objective in (wgan_gp(), reflow_critic()):
        loss32, stats32 = objective.d_loss(D, real, fake, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss16, stats16 = objective.d_loss(D, real, fake, t)
        assert loss16.dtype == torch.float32 and stats16["gp"].dtype == torch.float32
        assert stats16["gp"].item() == pytest.approx(stats32["gp"].item(), rel=1e-2)
        grads32 = torch.autograd.grad(loss32, list(D.parameters()))
        grads16 = torch.autograd.grad(loss16, list(D.parameters()))
        for a, b in zip(grads16, grads32):  # (the last bias gets no gradient: it cancels)
            assert (a - b).norm().item() <= 5e-2 * b.norm().item() + 1e-6


def test_fp16_gradient_penalty_with_a_grad_scaler_is_unscaled_before_the_penalty():
    """Spec §6 (PyTorch AMP examples): differentiate the scaled output, unscale, then form the penalty."""
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(4, 32), nn.SiLU(), nn.Linear(32, 1))
    real, fake, t = torch.randn(8, 4), torch.randn(8, 4), torch.rand(8)
    loss32, stats32 = wgan_gp().d_loss(D, real, fake, t)
    grads32 = torch.autograd.grad(loss32, list(D.parameters()))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    with torch.autocast("cpu", dtype=torch.float16):
        loss, stats = wgan_gp().d_loss(D, real, fake, t, scaler=scaler)
    assert stats["gp"].item() == pytest.approx(stats32["gp"].item(), rel=1e-2)  # not 2^20 times larger
    grads = torch.autograd.grad(scaler.scale(loss), list(D.parameters()))
    for a, b in zip(grads, grads32):
        assert (a / scaler.get_scale() - b).norm().item() <= 1e-2 * b.norm().item() + 1e-6


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"real has shape \(4, 2\) and fake has shape \(3, 2\)"):
        wgan_gp().d_loss(nn.Linear(2, 1), torch.zeros(4, 2), torch.zeros(3, 2))
    with pytest.raises(NonFiniteCriticError, match="critic output contains NaN or Inf"):
        wgan_gp().d_loss(lambda x: x.sum(1) / 0.0, torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"t must have shape \(4,\)"):
        penalty_interpolates(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="penalty_center=0.5 is not supported"):
        GradientPenaltyLoss(0.5)
    with pytest.raises(ValueError, match="gp_weight=-1 must be a number >= 0"):
        GradientPenaltyLoss(0, -1)
    with pytest.raises(ValueError, match="eps=0 must be > 0"):
        proximal_target(nn.Linear(2, 1), torch.zeros(4, 2), 0)


def test_single_forward_loss_equals_the_reference_three_forward_pattern():
    """The WGAN-GP authors' pattern: D(fake) − D(real) + λ(‖∇D(x̂)‖ − 1)² with separate forwards."""
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(3, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)).double()
    real, fake, t = torch.randn(16, 3, dtype=F64), torch.randn(16, 3, dtype=F64), torch.rand(16, dtype=F64)
    x_hat = (t[:, None] * real + (1 - t[:, None]) * fake).requires_grad_(True)
    grad = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)[0]
    reference = D(fake).mean() - D(real).mean() + 10 * ((grad.norm(2, dim=1) - 1) ** 2).mean()
    loss, _ = wgan_gp().d_loss(D, real, fake, t)
    torch.testing.assert_close(loss, reference)
    for a, b in zip(torch.autograd.grad(loss, list(D.parameters())), torch.autograd.grad(reference, list(D.parameters()))):
        torch.testing.assert_close(a, b)
