"""Image tokenizer: shapes at downsampling 4 and 8, encode/decode consistency, the quantizer
registry, losses, and bad input."""

import pytest
import torch

from genlab.metrics import CodebookUsage
from genlab.tokenizers import QUANTIZERS, FSQ, TokenizerConfig, VectorQuantizer, build_tokenizer


@pytest.mark.parametrize("downsample", [4, 8])
def test_shapes_and_round_trip(downsample):
    tok = build_tokenizer(TokenizerConfig(image_size=32, channels=8, downsample=downsample)).eval()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    out = tok(images)
    h = 32 // downsample
    assert out.reconstruction.shape == images.shape and out.indices.shape == (2, h, h)
    assert out.indices.dtype == torch.long and set(out.losses) == {"rec", "quantizer"}
    assert torch.equal(tok.encode(images), out.indices)
    torch.testing.assert_close(tok.decode(out.indices), out.reconstruction)


def test_loss_trains_encoder_and_decoder():
    tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8))
    out = tok(torch.rand(2, 3, 16, 16) * 2 - 1)
    out.loss.backward()
    assert tok.encoder.layers[0].weight.grad.abs().sum() > 0  # straight-through FSQ passes gradients
    assert torch.allclose(out.loss, out.losses["rec"])  # FSQ adds no auxiliary loss


def test_l1_and_custom_levels():
    tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8, levels=[7, 5, 5, 5, 5], rec_loss="l1",
                                          image_channels=1, channel_mult=[1, 1, 2]))
    assert tok.codebook_size == 4375 and isinstance(tok.quantizer, FSQ)
    assert tok(torch.zeros(1, 1, 16, 16)).indices.shape == (1, 4, 4)


def test_quantizer_is_chosen_by_config(monkeypatch):
    built = {}

    def fake(cfg):
        built["levels"] = cfg.levels
        return FSQ([5, 5, 5], channel_first=True)

    monkeypatch.setitem(QUANTIZERS, "other", fake)
    tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8, quantizer="other"))
    assert tok.codebook_size == 125 and built


def test_bf16_autocast_forward():
    tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = tok(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert out.indices.dtype == torch.long and torch.isfinite(out.loss)


def test_codebook_usage_and_perplexity():
    m = CodebookUsage(4)
    m.update(torch.tensor([0, 0, 1, 1]))
    m.update(torch.tensor([[2, 2], [3, 3]]))
    stats = m.compute()
    assert stats["usage"] == 1.0 and torch.isclose(stats["perplexity"], torch.tensor(4.0, dtype=torch.float64))
    m = CodebookUsage(10)
    m.update(torch.tensor([3, 3, 3]))
    stats = m.compute()
    assert stats["usage"] == 0.1 and stats["perplexity"] == 1.0
    with pytest.raises(ValueError, match="out of range"):
        m.update(torch.tensor([10]))


@pytest.mark.parametrize("kwargs, match", [
    ({"downsample": 6}, "power of two"),
    ({"image_size": 30}, "divisible by downsample"),
    ({"quantizer": "pq"}, "quantizer='pq' is not supported"),
    ({"rec_loss": "l3"}, "rec_loss='l3'"),
    ({"channel_mult": [1, 2]}, "needs log2\\(downsample\\)\\+1 = 3 entries"),
    ({"quantizer_options": {"codebook_size": 3}}, "do not fit quantizer='fsq'"),
])
def test_bad_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_tokenizer(TokenizerConfig(**kwargs))


def test_bad_images():
    tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8))
    with pytest.raises(ValueError, match="expects image_channels=3"):
        tok(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="\\(B, C, H, W\\)"):
        tok(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="divisible by downsample=4"):
        tok.encode(torch.zeros(1, 3, 18, 18))


def test_vq_tokenizer_by_config():
    torch.manual_seed(0)
    cfg = TokenizerConfig(image_size=16, channels=8, quantizer="vq",
                          quantizer_options={"dim": 4, "codebook_size": 16, "kmeans_init": True})
    tok = build_tokenizer(cfg)
    assert isinstance(tok.quantizer, VectorQuantizer) and tok.codebook_size == 16
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    out = tok(images)  # training mode: k-means init on this batch (32 latents for 16 codes)
    assert tok.quantizer.initted and out.losses["quantizer"] > 0
    torch.testing.assert_close(out.loss, out.losses["rec"] + out.losses["quantizer"])
    out.loss.backward()
    assert tok.encoder.layers[0].weight.grad.abs().sum() > 0
    tok.eval()
    out = tok(images)
    assert out.indices.shape == (2, 4, 4) and out.indices.dtype == torch.long
    assert torch.equal(tok.encode(images), out.indices)
    torch.testing.assert_close(tok.decode(out.indices), out.reconstruction)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = tok(images)
    assert out.indices.dtype == torch.long and out.reconstruction.dtype == torch.bfloat16


@pytest.mark.parametrize("kwargs, match", [
    ({"quantizer": "vq", "quantizer_options": {"codebook_size": 64}}, "missing 1 required positional argument: 'dim'"),
    ({"quantizer": "vq", "quantizer_options": {"dim": 4, "codebook_size": 0}}, "codebook_size=0"),
    ({"quantizer": "vq", "levels": [8, 5, 5], "quantizer_options": {"dim": 4, "codebook_size": 8}}, "is an FSQ option"),
])
def test_bad_vq_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenizerConfig(**kwargs).validate_tokenizer()


def test_non_finite_images_are_rejected():
    tok = build_tokenizer(TokenizerConfig(image_size=16, channels=8))
    with pytest.raises(ValueError, match="images contains NaN or Inf"):
        tok(torch.full((1, 3, 16, 16), float("nan")))
