"""ViT encoder/decoder with RoPE-2D, and as the image tokenizer's second backbone (by config)."""

import pytest
import torch

from genlab.nn.vit import PatchEmbed, ViTDecoder, ViTEncoder
from genlab.tokenizers import TokenizerConfig, build_tokenizer
from genlab.tokenizers.autoencoder import WEIGHTS_KIND, ImageTokenizer, tokenizer_config_dict
from genlab.io import save_weights


def test_patch_embedding_tokens_and_positions():
    embed = PatchEmbed(3, 8, 4)
    tokens, pos = embed(torch.randn(2, 3, 8, 12))
    assert tokens.shape == (2, 6, 8)
    assert pos.tolist() == [[0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]]  # (row, column) in raster order
    with pytest.raises(ValueError, match="not divisible by patch=4"):
        embed(torch.randn(1, 3, 10, 12))


def test_encoder_decoder_shapes_and_any_grid_size():
    enc, dec = ViTEncoder(3, 4, patch=4, dim=16, depth=1, heads=2), ViTDecoder(3, 4, patch=4, dim=16, depth=1, heads=2)
    for h, w in [(16, 16), (8, 24)]:  # RoPE positions: no fixed grid
        z = enc(torch.randn(2, 3, h, w))
        assert z.shape == (2, 4, h // 4, w // 4) and dec(z).shape == (2, 3, h, w)


def test_positions_make_the_encoder_see_the_layout():
    torch.manual_seed(0)
    enc = ViTEncoder(1, 2, patch=2, dim=16, depth=1, heads=2).eval()
    img = torch.randn(1, 1, 4, 4)
    swapped = img.clone()
    swapped[..., :2, :2], swapped[..., 2:, 2:] = img[..., 2:, 2:], img[..., :2, :2]  # swap two patches
    z, zs = enc(img), enc(swapped)
    assert not torch.allclose(z[..., 0, 0], zs[..., 1, 1], atol=1e-4)  # a bag of patches would match here
    no_rope = ViTEncoder(1, 2, patch=2, dim=16, depth=1, heads=2).eval()
    no_rope.load_state_dict(enc.state_dict())
    for block in no_rope.transformer.blocks:
        block.mixer.rope = None
    torch.testing.assert_close(no_rope(img)[..., 0, 0], no_rope(swapped)[..., 1, 1], atol=1e-5, rtol=1e-5)


def test_gau_mixer_and_rope_2d_over_qk_dim():
    enc = ViTEncoder(3, 4, patch=4, dim=16, depth=2, mixer="gau", qk_dim=8)
    assert enc.transformer.rope.dim == 8 and enc.transformer.rope.n_axes == 2
    assert enc(torch.randn(1, 3, 8, 8)).shape == (1, 4, 2, 2)


def test_tokenizer_backbone_by_config_trains_and_reloads(tmp_path):
    torch.manual_seed(0)
    cfg = TokenizerConfig(image_size=16, channels=16, backbone="vit", backbone_options={"depth": 1, "heads": 2}, downsample=4)
    tok = build_tokenizer(cfg)
    assert isinstance(tok.encoder, ViTEncoder) and isinstance(tok.decoder, ViTDecoder)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        out = tok(images)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(out.loss.item())
    assert out.indices.shape == (4, 4, 4) and losses[-1] < 0.7 * losses[0]
    path = tmp_path / "vit.safetensors"
    save_weights(tok, str(path), WEIGHTS_KIND, tokenizer_config_dict(cfg))
    again = ImageTokenizer.from_pretrained(str(path))
    tok.eval()
    torch.testing.assert_close(again(images).reconstruction, tok(images).reconstruction)


def test_backbone_options_are_checked():
    with pytest.raises(ValueError, match="do not fit backbone='vit'"):
        build_tokenizer(TokenizerConfig(image_size=16, channels=16, backbone="vit", backbone_options={"layers": 2}))
    with pytest.raises(ValueError, match="apply to backbone='vit' only"):
        build_tokenizer(TokenizerConfig(image_size=16, channels=8, backbone_options={"depth": 2}))
    with pytest.raises(ValueError, match="channel_mult=\\[1, 2, 2\\] applies to backbone='conv' only"):
        build_tokenizer(TokenizerConfig(image_size=16, channels=16, backbone="vit", channel_mult=[1, 2, 2]))
