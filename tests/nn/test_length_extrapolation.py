"""Length extrapolation (blocks.md section 4): RoPE scalings, ReRoPE / Leaky ReRoPE, log-n."""

import math

import pytest
import torch
from rotary_embedding_torch import RotaryEmbedding as PeerRoPE

from genlab.nn.attention import Attention
from genlab.nn.gau import GAU
from genlab.nn.rerope import rerope_logits
from genlab.nn.rope import RotaryEmbedding, log_n_scale, rope_frequencies
from genlab.nn.transformer import Transformer


def _attn(rope, **kw):
    torch.manual_seed(0)
    return Attention(32, heads=2, rope=rope, **kw).double()


@pytest.mark.parametrize("mixer", ["attention", "gau"])
def test_rerope_with_window_at_least_n_equals_rope(mixer):
    x = torch.randn(2, 12, 32, dtype=torch.float64)
    outs = []
    for rope in (RotaryEmbedding(16), RotaryEmbedding(16, scaling="rerope", rerope_window=12)):
        torch.manual_seed(0)
        layer = (Attention(32, heads=2, rope=rope) if mixer == "attention" else GAU(32, qk_dim=16, rope=rope)).double()
        outs.append(layer(x, causal=True))
    torch.testing.assert_close(outs[1], outs[0], atol=1e-10, rtol=0)


def test_leaky_rerope_with_k_1_equals_rope():
    x = torch.randn(2, 12, 32, dtype=torch.float64)
    plain = _attn(RotaryEmbedding(16))(x, causal=True)
    leaky = _attn(RotaryEmbedding(16, scaling="leaky_rerope", rerope_window=3, rerope_leak=1.0))(x, causal=True)
    torch.testing.assert_close(leaky, plain, atol=1e-10, rtol=0)
    clipped = _attn(RotaryEmbedding(16, scaling="rerope", rerope_window=3))(x, causal=True)
    assert (clipped - plain).abs().max() > 1e-3  # a small window does change the function


@pytest.mark.parametrize("leak", [None, 4.0])
def test_two_matrix_form_equals_per_pair_rotation(leak):
    w, t = 3, 10
    rope = RotaryEmbedding(8, scaling="leaky_rerope" if leak else "rerope", rerope_window=w, rerope_leak=leak or 16.0)
    q, k = torch.randn(1, 1, t, 8, dtype=torch.float64), torch.randn(1, 1, t, 8, dtype=torch.float64)
    pos = torch.arange(t, dtype=torch.float64)[None]
    got = rerope_logits(rope, q, k, pos, pos)[0, 0]
    for i in range(t):
        for j in range(t):
            d = i - j
            rho = d if d < w else (w if leak is None else w + (d - w) / leak)
            want = (rope.rotate_at(q[0, 0, i:i + 1], torch.tensor([rho])) * k[0, 0, j]).sum()
            assert abs(got[i, j] - want) < 1e-5


@pytest.mark.parametrize("scaling", ["rerope", "leaky_rerope"])
@pytest.mark.parametrize("mixer", ["attention", "gau"])
def test_rerope_decode_with_cache_equals_last_prefill_row(scaling, mixer):
    torch.manual_seed(0)
    rope = RotaryEmbedding(8, n_axes=2, scaling=scaling, rerope_window=4, rerope_leak=8.0)
    kw = {"qk_dim": 8} if mixer == "gau" else {}
    model = Transformer(32, depth=2, heads=4, mixer=mixer, rope=rope, **kw).double().eval()
    x = torch.randn(2, 11, 32, dtype=torch.float64)
    pos = torch.arange(11, dtype=torch.float64).expand(2, 2, 11)
    full = model(x, pos, causal=True)
    cache = model.new_cache()
    model(x[:, :7], pos[:, :, :7], causal=True, cache=cache)
    steps = [model(x[:, i:i + 1], pos[:, :, i:i + 1], causal=True, cache=cache) for i in range(7, 11)]
    torch.testing.assert_close(torch.cat(steps, 1), full[:, 7:], atol=1e-10, rtol=0)


def test_ntk_frequencies_and_peer():
    d = 64
    theta, ntk = rope_frequencies(d).double(), RotaryEmbedding(d, scaling="ntk", factor=4.0).inv_freq.double()
    assert ntk[0] == theta[0]
    assert abs(ntk[-1] / theta[-1] - 0.25) < 1e-6  # lowest frequency interpolated exactly (4k -> 16k)
    x = torch.randn(1, 40, d)
    torch.testing.assert_close(RotaryEmbedding(d, scaling="ntk", factor=4.0)(x),
                               PeerRoPE(d, theta_rescale_factor=4.0).rotate_queries_or_keys(x), atol=1e-6, rtol=0)


def test_pi_mixed_and_yarn_frequencies():
    d, s = 32, 4.0
    theta = rope_frequencies(d).double()
    torch.testing.assert_close(RotaryEmbedding(d, scaling="pi", factor=s).inv_freq.double(), theta / s)
    x = torch.randn(1, 20, d)
    torch.testing.assert_close(RotaryEmbedding(d, scaling="pi", factor=s)(x), RotaryEmbedding(d)(x, torch.arange(20) / s))
    mixed = RotaryEmbedding(d, scaling="ntk_mixed", factor=s, mixed_b=1.0).inv_freq.double()
    torch.testing.assert_close(mixed, theta * s ** (-torch.arange(1, d // 2 + 1) / (d // 2)))  # b = 1: NTK-fixed
    torch.testing.assert_close(RotaryEmbedding(d, scaling="ntk_mixed", factor=s, mixed_b=0.0).inv_freq.double(), theta / s)
    yarn = RotaryEmbedding(d, scaling="yarn", factor=s, train_len=128, yarn_tau=32.0)
    r = theta * 128 / (2 * math.pi)
    ratio = yarn.inv_freq.double() / theta
    assert torch.allclose(ratio[r > 32], torch.ones(1, dtype=torch.float64)) and torch.allclose(ratio[r < 1], 1 / s * torch.ones(1, dtype=torch.float64))
    assert yarn.mscale == pytest.approx(1 + 0.1 * math.log(s))
    # queries and keys both carry mscale: scores times its square
    q, k = torch.randn(1, 5, d), torch.randn(1, 5, d)
    plain = RotaryEmbedding(d)
    plain.inv_freq = yarn.inv_freq
    torch.testing.assert_close((yarn(q) * yarn(k)).sum(-1), (plain(q) * plain(k)).sum(-1) * yarn.mscale ** 2)


@pytest.mark.parametrize("scaling", ["ntk_dynamic", "yarn_dynamic"])
def test_dynamic_scalings_are_rope_up_to_the_training_length(scaling):
    x = torch.randn(1, 2, 24, 16)
    dyn = RotaryEmbedding(16, scaling=scaling, train_len=16)
    torch.testing.assert_close(dyn(x[:, :, :16]), RotaryEmbedding(16)(x[:, :, :16]))
    static = RotaryEmbedding(16, scaling=scaling.split("_")[0], factor=24 / 16, train_len=16)
    torch.testing.assert_close(dyn(x), static(x))


def test_log_n_factor_is_one_up_to_the_training_length():
    n = torch.arange(1, 129)
    assert torch.equal(log_n_scale(n, 128, floor=128), torch.ones(128))
    assert (log_n_scale(torch.arange(129, 1025), 128, floor=128) > 1).all()
    x = torch.randn(2, 20, 32, dtype=torch.float64)
    plain, post = _attn(RotaryEmbedding(16))(x, causal=True), _attn(RotaryEmbedding(16), log_n_post_hoc=True, train_len=12)(x, causal=True)
    torch.testing.assert_close(post[:, :12], plain[:, :12], atol=1e-12, rtol=0)
    assert (post[:, 12:] - plain[:, 12:]).abs().max() > 1e-4


def test_fixed_and_qk_norm_scales():
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    torch.testing.assert_close(_attn(RotaryEmbedding(16), scale="fixed", scale_alpha=1.0)(x, causal=True),
                               _attn(RotaryEmbedding(16))(x, causal=True))
    qk = _attn(RotaryEmbedding(16), scale="qk_norm", scale_alpha=10.0)
    with torch.no_grad():
        qk.qkv.weight[:64] *= 7.0  # query/key magnitudes do not matter under qk_norm
    torch.testing.assert_close(qk(x, causal=True), _attn(RotaryEmbedding(16), scale="qk_norm", scale_alpha=10.0)(x, causal=True))
    with pytest.raises(ValueError, match="scale"):
        Attention(32, heads=2, scale="cosine")
