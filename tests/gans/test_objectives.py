"""Every objective by name: one critic and one generator step on a tiny MLP, and misapplied options."""

import pytest
import torch

from genlab.gans import OBJECTIVES, NetworkConfig, build_critic, build_generator, build_objective


@pytest.mark.parametrize("name", OBJECTIVES)
def test_every_objective_trains_one_step(name):
    torch.manual_seed(0)
    cfg = NetworkConfig(latent_dim=2, width=16, depth=2)
    G, D = build_generator(cfg), build_critic(cfg)
    objective = build_objective(name)
    real, fake = torch.randn(32, 2), G(torch.randn(32, 2))
    loss_d, stats = objective.critic_loss(D, real, fake)
    loss_d.backward()
    assert all(p.grad is None for p in G.parameters())  # the fake batch is detached in the critic loss
    assert all(torch.isfinite(v).all() for v in stats.values())
    loss_g, _ = objective.generator_loss(D, G(torch.randn(32, 2)))
    loss_g.backward()
    assert torch.isfinite(loss_g) and all(p.grad is not None for p in G.parameters())


def test_objectives_are_the_library_losses():
    v_real, v_fake = torch.randn(8), torch.randn(8)
    critic_scores = iter([torch.cat([v_real, v_fake]), v_fake])
    fgan = build_objective("fgan_hellinger", g_mode="saddle")
    loss, stats = fgan.critic_loss(lambda x: next(critic_scores), torch.zeros(8, 2), torch.zeros(8, 2))
    torch.testing.assert_close(loss, fgan.divergence.d_loss(v_real, v_fake))
    torch.testing.assert_close(fgan.generator_loss(lambda x: next(critic_scores), torch.zeros(8, 2))[0],
                               fgan.divergence.g_loss(v_fake, "saddle"))
    assert build_objective("wgan_gp").critic.gp_weight == 10 and build_objective("reflow").critic.gp_weight == 0.5
    assert build_objective("reflow", gp_weight=2.0).critic.gp_weight == 2.0


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "fgan_wasserstein"}, "unknown objective 'fgan_wasserstein'"),
    ({"name": "fgan_kl", "gp_weight": 1.0}, "gp_weight=1.0 only applies to 'wgan_gp' and 'reflow'"),
    ({"name": "wgan_gp", "logit_clip": 5.0}, "logit_clip=5.0 only applies to f-GAN"),
    ({"name": "lr_exponential", "g_mode": "saddle"}, "g_mode='saddle' only applies to f-GAN"),
    ({"name": "fgan_kl", "g_mode": "minimax"}, "g_mode='minimax' is not supported"),
])
def test_misapplied_options_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_objective(**kwargs)


def test_mismatched_batches_are_errors():
    with pytest.raises(ValueError, match=r"real has shape \(8, 2\) and fake has shape \(4, 2\)"):
        build_objective("fgan_js").critic_loss(lambda x: x[:, 0], torch.zeros(8, 2), torch.zeros(4, 2))
