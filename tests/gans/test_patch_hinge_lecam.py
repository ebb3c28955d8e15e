"""The PatchGAN discriminator, the hinge objective, patch-logit maps in every objective, and LeCam."""

import pytest
import torch

from genlab.gans import OBJECTIVES, LeCam, PatchDiscriminator, build_objective
from genlab.gans.patch import patch_output_size


@pytest.mark.parametrize("size, n_layers, side", [(16, 2, 2), (64, 3, 6), (128, 3, 14)])
def test_patch_map_size_and_no_batch_mixing(size, n_layers, side):
    torch.manual_seed(0)
    D = PatchDiscriminator(3, 8, n_layers)
    x = torch.randn(3, 3, size, size)
    out = D(x)
    assert out.shape == (3, 1, side, side) and patch_output_size(size, n_layers) == side
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())
    torch.testing.assert_close(D(x[:1]), out[:1])  # per-sample norm: a sample's logits ignore the batch


def test_patch_discriminator_rejects_images_too_small_and_bad_norm():
    with pytest.raises(ValueError, match="too small for n_layers=3"):
        PatchDiscriminator(1, 4, 3)(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="norm"):
        PatchDiscriminator(norm="batch")


def test_hinge_is_taming_formula():
    v_real, v_fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.5])
    scores = iter([torch.cat([v_real, v_fake]), v_fake])
    hinge = build_objective("hinge")
    loss, stats = hinge.critic_loss(lambda x: next(scores), torch.zeros(3, 2), torch.zeros(3, 2))
    expected = 0.5 * ((0 + 0.5 + 2.0) / 3 + (0 + 1.0 + 1.5) / 3)
    torch.testing.assert_close(loss, torch.tensor(expected))
    assert stats["acc_real"].item() == pytest.approx(2 / 3)
    torch.testing.assert_close(hinge.generator_loss(lambda x: next(scores), torch.zeros(3, 2))[0], -v_fake.mean())


@pytest.mark.parametrize("name", ["hinge", "fgan_gan", "reflow", "wgan_gp"])
def test_objectives_take_patch_maps(name):
    torch.manual_seed(0)
    D = PatchDiscriminator(1, 4, 1)
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8, requires_grad=True)
    objective = build_objective(name)
    loss_d, _ = objective.critic_loss(D, real, fake)
    loss_d.backward()
    assert fake.grad is None and all(p.grad is not None for p in D.parameters())
    loss_g, _ = objective.generator_loss(D, fake)
    loss_g.backward()
    assert fake.grad is not None and torch.isfinite(loss_g)


def test_patches_are_scores_for_fgan_and_images_for_penalties():
    logits = torch.randn(2, 1, 3, 3)
    fgan = build_objective("fgan_gan")
    torch.testing.assert_close(fgan.generator_loss(lambda x: logits, torch.zeros(2, 1, 8, 8))[0],
                               fgan.divergence.g_loss(logits.reshape(-1)))
    torch.testing.assert_close(build_objective("reflow").generator_loss(lambda x: logits, torch.zeros(2, 1, 8, 8))[0],
                               -logits.mean())
    assert "hinge" in OBJECTIVES


def test_lecam_formula_and_anchor_updates():
    lecam = LeCam(decay=0.5)
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    reg = lecam(d_real, d_fake)  # anchors move first: ema_real = 1.0, ema_fake = -0.5
    assert lecam.ema_real.item() == 1.0 and lecam.ema_fake.item() == -0.5
    expected = ((1.5 ** 2 + 3.5 ** 2) / 2) + ((3.0 ** 2 + 1.0 ** 2) / 2)
    assert reg.item() == pytest.approx(expected)
    state = lecam.state_dict()
    assert set(state) == {"ema_real", "ema_fake"}
    lecam.eval()
    lecam(d_real, d_fake)
    assert lecam.ema_real.item() == 1.0  # no update in eval mode
    with pytest.raises(ValueError, match="decay=1"):
        LeCam(decay=1)
