"""The tokenizer's VQGAN-style loss: adaptive weight, detached discriminator step, frozen discriminator in
the tokenizer step, warm-ups, LPIPS with local weights only, and config checks."""

import copy

import pytest
import torch

from genlab.tokenizers import TokenizerConfig, build_tokenizer
from genlab.tokenizers.losses import (VGG16_FILE, PerceptualLoss, TokenizerLoss, TokenizerLossConfig, adaptive_weight,
                                      find_vgg16_weights, last_layer)


def _setup(adversarial="hinge", **kwargs):
    torch.manual_seed(0)
    tok = build_tokenizer(TokenizerConfig(image_channels=1, image_size=8, channels=4, downsample=2, levels=[5, 3]))
    loss = TokenizerLoss(TokenizerLossConfig(adversarial=adversarial, disc_channels=4, disc_layers=1, **kwargs), 1)
    disc, opt_d = loss.build_discriminator(lr=1e-2)
    images = torch.rand(4, 1, 8, 8) * 2 - 1
    return tok, loss, disc, opt_d, images


def test_adaptive_weight_is_the_vqgan_formula():
    tok, loss, disc, _, images = _setup(disc_weight=0.5)
    out = tok(images)
    total, logs = loss.generator_loss(1, images, out, last_layer(tok.decoder), disc)
    # the same quantities by hand, from separate backward passes
    W = tok.decoder.layers[-1].weight
    assert last_layer(tok.decoder) is W
    g_nll = torch.autograd.grad(tok(images).losses["rec"], W)[0]
    g_gan = torch.autograd.grad(-disc(tok(images).reconstruction).mean(), W)[0]
    expected = 0.5 * torch.clamp(g_nll.norm() / (g_gan.norm() + 1e-4), 0, 1e4)
    torch.testing.assert_close(logs["adaptive_weight"], expected)
    torch.testing.assert_close(total, out.losses["rec"] + expected * logs["gan"])
    assert not logs["adaptive_weight"].requires_grad


def test_adaptive_weight_is_clamped_and_detached():
    w = torch.randn(3, 3, requires_grad=True)
    big = adaptive_weight((w * 1e3).sum(), (w * 0).sum() + 0 * w.sum(), w)
    assert big.item() == 1e4 and not big.requires_grad


@pytest.mark.parametrize("adversarial", ["hinge", "reflow"])
def test_discriminator_step_sees_detached_reconstructions(adversarial):
    tok, loss, disc, opt_d, images = _setup(adversarial, lecam_weight=0.1)
    before = copy.deepcopy(disc.state_dict())
    seen = []
    probe = lambda x: seen.append(x.requires_grad and x.grad_fn is not None) or disc(x)  # noqa: E731
    out = tok(images)
    stats = loss.discriminator_step(1, images, out.reconstruction, probe, opt_d, backward=lambda l: l.backward())
    assert seen and not any(seen)  # no input of the discriminator hangs on the tokenizer's graph
    assert all(p.grad is None for p in tok.parameters())
    assert any(not torch.equal(before[k], v) for k, v in disc.state_dict().items())
    assert {"disc_loss", "lecam"} <= set(stats)


def test_discriminator_step_draws_from_its_own_generator():
    tok, loss, disc, _, images = _setup("reflow")
    rec = tok(images).reconstruction.detach()
    state, weights, global_before = loss.state_dict(), copy.deepcopy(disc.state_dict()), torch.random.get_rng_state()
    sgd = torch.optim.SGD(disc.parameters(), lr=0.0)
    first = loss.discriminator_step(1, images, rec, disc, sgd, lambda l: l.backward())
    assert torch.equal(torch.random.get_rng_state(), global_before)  # no global draw in training code
    second = loss.discriminator_step(1, images, rec, disc, sgd, lambda l: l.backward())
    assert not torch.equal(first["gp"], second["gp"])  # new interpolation times
    loss.load_state_dict(state)  # what a resumed run restores
    assert torch.equal(loss.discriminator_step(1, images, rec, disc, sgd, lambda l: l.backward())["gp"], first["gp"])


def test_tokenizer_step_does_not_update_the_discriminator():
    tok, loss, disc, _, images = _setup()
    before = copy.deepcopy(disc.state_dict())
    opt = torch.optim.SGD(tok.parameters(), lr=0.1)
    total, logs = loss.generator_loss(1, images, tok(images), last_layer(tok.decoder), disc)
    total.backward()
    opt.step()
    assert "gan" in logs and all(p.grad is None for p in disc.parameters())
    assert all(torch.equal(before[k], v) for k, v in disc.state_dict().items())
    assert all(p.requires_grad for p in disc.parameters())  # frozen only during the call
    assert tok.decoder.layers[-1].weight.grad is not None


def test_warm_ups_gate_the_discriminator_and_the_adversarial_term():
    tok, loss, disc, opt_d, images = _setup(disc_start=2, gan_start=3)
    before = copy.deepcopy(disc.state_dict())
    out = tok(images)
    assert loss.discriminator_step(2, images, out.reconstruction, disc, opt_d, lambda l: l.backward()) == {}
    assert all(torch.equal(before[k], v) for k, v in disc.state_dict().items())
    total, logs = loss.generator_loss(3, images, out, last_layer(tok.decoder), disc)
    assert logs == {} and total is not out.loss and torch.equal(total, out.loss)
    assert "gan" in loss.generator_loss(4, images, out, last_layer(tok.decoder), disc)[1]
    plain = TokenizerLoss(TokenizerLossConfig(), 1)
    assert plain.plain and plain.generator_loss(1, images, out)[0] is out.loss


def test_perceptual_loss_is_zero_for_identical_images_and_positive_otherwise():
    torch.manual_seed(0)
    p = PerceptualLoss(random_backbone=True)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.equal(p(x, x), torch.zeros(3))
    assert (p(x, x.flip(-1)) > 0).all()
    gray = x[:, :1]
    assert torch.equal(p(gray, gray), torch.zeros(3)) and (p(gray, 0.5 * gray) > 0).all()
    assert not any(q.requires_grad for q in p.parameters())


def test_perceptual_weights_come_from_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as err:
        PerceptualLoss()
    where = str(tmp_path / "hub" / "checkpoints" / VGG16_FILE)
    assert where in str(err.value) and "--perceptual_weights PATH" in str(err.value)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        TokenizerLoss(TokenizerLossConfig(perceptual_weight=1.0, perceptual_weights=str(tmp_path / "nowhere.pth")), 3)
    # a torchvision-layout file (features.<index>.weight/bias) lands in lpips's slices, from the cache
    torch.manual_seed(0)
    ref = PerceptualLoss(random_backbone=True).lpips.net.state_dict()
    state = {f"features.{k.split('.', 1)[1]}": torch.randn_like(v) for k, v in ref.items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, where)
    assert find_vgg16_weights() == tmp_path / "hub" / "checkpoints" / VGG16_FILE
    loaded = PerceptualLoss().lpips.net.state_dict()
    assert all(torch.equal(loaded[k], state[f"features.{k.split('.', 1)[1]}"]) for k in loaded)


@pytest.mark.parametrize("kwargs, message", [
    ({"adversarial": "hinj"}, "adversarial"),
    ({"adversarial": "hinge", "disc_start": 5, "gan_start": 2}, "gan_start=2 must be >= disc_start=5"),
    ({"lecam_weight": 0.1}, "set adversarial too"),
    ({"disc_weight": -1.0}, "disc_weight=-1.0 must be a number >= 0"),
    ({"disc_norm": "batch"}, "disc_norm"),
])
def test_bad_loss_configs_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenizerLossConfig(**kwargs).validate_losses()

