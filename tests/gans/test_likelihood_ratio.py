"""Likelihood-ratio objectives: the validator recovers ω(r) for the paper's examples and rejects pairs
that break the construction; the original GAN's trained logit is log(q/p); losses and bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from genlab.gans import EXAMPLES, LikelihoodRatioGAN, NonFiniteCriticError, check_construction

F64 = torch.float64

OMEGA = {  # ω(r), the maximiser of φ(t) + rψ(t), in closed form (Basioti & Moustakides 2020; Su kexue.fm 7210)
    "gan": lambda r: r.log(),
    "gan_probability": lambda r: r / (1 + r),
    "exponential": lambda r: 0.5 * r.log(),
    "gan_kl": lambda r: r.log(),
    "gan_nonsat": lambda r: r.log(),
    "lsgan": lambda r: (-1 + r) / (1 + r),  # a = −1, b = 1
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_satisfies_the_construction_and_recovers_omega(name):
    report = EXAMPLES[name]().validate()
    assert report.ok and report.increasing
    torch.testing.assert_close(report.omega, OMEGA[name](report.r), rtol=0, atol=1e-9)
    assert report.psi_at_one == pytest.approx(0.0, abs=1e-12)


def test_exponential_gan_is_squared_hellinger_up_to_a_constant():
    report = EXAMPLES["exponential"]().validate()
    torch.testing.assert_close(report.d, report.r - 2 * report.r.sqrt(), rtol=0, atol=1e-12)  # d(r) = r − 2√r


def test_decoupled_generators_give_the_stated_divergences():
    """A: d_G = r log r (KL(q||p)); B: (1 + r) log(1 + r); C: (r − 1)²/(r + 1)."""
    for name, d_g in [("gan_kl", lambda r: r * r.log()), ("gan_nonsat", lambda r: (1 + r) * (1 + r).log()),
                      ("lsgan", lambda r: (r - 1) ** 2 / (r + 1))]:
        report = EXAMPLES[name]().validate()
        torch.testing.assert_close(report.generator_d, d_g(report.r), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name, inverse", [("gan", torch.exp), ("exponential", lambda t: torch.exp(2 * t)),
                                           ("lsgan", lambda t: (t + 1) / (1 - t))])
def test_ratio_reads_q_over_p_off_the_discriminator(name, inverse):
    t = torch.linspace(-0.9, 0.9, 19, dtype=F64)
    torch.testing.assert_close(EXAMPLES[name]().ratio(t), inverse(t))


def test_validator_rejects_a_pair_minimal_away_from_one():
    """The exponential pair without the shift of ψ: d(r) = −2√r keeps decreasing."""
    unshifted = LikelihoodRatioGAN(lambda t: -torch.exp(t), lambda t: -torch.exp(-t), name="unshifted")
    report = unshifted.check()
    assert not report.ok and report.psi_at_one == pytest.approx(-1.0)
    with pytest.raises(ValueError, match=r"minimal at r = 100, not at r = 1: ψ\(ω\(1\)\) = -1; shift ψ by 1"):
        unshifted.validate()


def test_validator_rejects_a_maximiser_that_ignores_the_ratio_or_leaves_the_range():
    flat = check_construction(lambda t: -t ** 2, lambda t: 0 * t, (-5, 5))
    assert any("not strictly monotone" in p for p in flat.problems)
    narrow = check_construction(lambda t: -F.softplus(t), lambda t: math.log(2) - F.softplus(-t), (-1, 1))
    assert any("at an end of t_range" in p for p in narrow.problems)  # ω(100) = log 100 > 1
    linear = check_construction(lambda t: -t, lambda t: t, (-5, 5))  # no interior maximum at all
    assert not linear.ok


def test_validator_rejects_a_generator_that_is_not_minimal_at_one():
    gan = EXAMPLES["gan"]()
    wrong = LikelihoodRatioGAN(gan.phi, gan.psi, beta=lambda t: -t, name="concave")  # d_G = −r log r
    with pytest.raises(ValueError, match="not minimal at r = 1 up to its linear term"):
        wrong.validate()
    zero = LikelihoodRatioGAN(gan.phi, gan.psi, beta=lambda t: 0 * t, name="zero")
    assert any("identically zero" in p for p in zero.check().problems)


def _stratified_normal(n, mean):
    u = (torch.arange(n, dtype=F64) + 0.5) / n
    return mean + math.sqrt(2) * torch.erfinv(2 * u - 1)


def test_trained_original_gan_logit_is_the_log_likelihood_ratio():
    """Spec §2.5: with p = N(μp, 1), q = N(μq, 1) the logit approaches (μq − μp)x + (μp² − μq²)/2."""
    mu_p, mu_q = 0.5, -0.7
    game = EXAMPLES["gan"]()
    real, fake = _stratified_normal(2000, mu_p), _stratified_normal(2000, mu_q)
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=100, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = game.d_loss(w[0] * real + w[1], w[0] * fake + w[1])
        loss.backward()
        return loss

    opt.step(closure)
    assert w[0].item() == pytest.approx(mu_q - mu_p, abs=2e-2)
    assert w[1].item() == pytest.approx((mu_p ** 2 - mu_q ** 2) / 2, abs=2e-2)
    ratio_on_fake = game.ratio(w[0] * fake + w[1]).mean().item()  # E_q[q/p] = exp((μq − μp)²) = 4.2
    assert ratio_on_fake == pytest.approx(math.exp((mu_q - mu_p) ** 2), rel=0.1)


def test_losses():
    game = EXAMPLES["lsgan"]()
    t_real, t_fake = torch.randn(8, dtype=F64), torch.randn(8, dtype=F64)
    torch.testing.assert_close(game.d_loss(t_real, t_fake), ((t_real + 1) ** 2).mean() - (1 - (t_fake - 1) ** 2).mean())
    torch.testing.assert_close(game.g_loss(t_fake), (t_fake ** 2).mean())  # β = t² for a = −1, b = 1
    saddle = EXAMPLES["exponential"]()
    torch.testing.assert_close(saddle.g_loss(t_fake), (1 - torch.exp(-t_fake)).mean())  # no β: the generator plays ψ
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert game.d_loss(t_real.bfloat16(), t_fake.bfloat16()).dtype == torch.float32


def test_bad_input_raises_clear_errors():
    game = EXAMPLES["gan"]()
    with pytest.raises(ValueError, match=r"t_real has shape \(8,\) and t_fake has shape \(6,\)"):
        game.d_loss(torch.zeros(8), torch.zeros(6))
    with pytest.raises(NonFiniteCriticError, match="t_fake contains NaN or Inf"):
        game.g_loss(torch.tensor([0.0, math.inf]))
    with pytest.raises(TypeError, match="phi must be a callable"):
        LikelihoodRatioGAN(1.0, torch.exp)
    with pytest.raises(ValueError, match="alpha is only used with beta"):
        LikelihoodRatioGAN(torch.exp, torch.exp, alpha=torch.exp)
    with pytest.raises(ValueError, match="t_range"):
        check_construction(torch.exp, torch.exp, (1.0, -1.0))
    with pytest.raises(ValueError, match="least_squares needs b > a"):
        EXAMPLES["lsgan"](1.0, 0.0)
