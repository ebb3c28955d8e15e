"""RoPE: relativity, orthogonality, pairings (interleaved / half-split / Meta / HF formulas),
rotary-embedding-torch equality, RoPE-2D allocations, NTK scaling, float32 angles under bf16."""

import math

import pytest
import torch
from rotary_embedding_torch import RotaryEmbedding as PeerRoPE
from rotary_embedding_torch import apply_rotary_emb

from genlab.nn.rope import RotaryEmbedding, grid_positions, half_split_permutation, log_n_scale, rope_frequencies


def _score(rope, q, k, m, n):
    """``(R_m q) . (R_n k)`` for positions given per axis (scalars or tuples)."""
    pm, pn = (torch.tensor(p, dtype=torch.float32).reshape(-1, 1) for p in (m, n))
    if rope.n_axes == 1:
        pm, pn = pm[0], pn[0]
    return (rope(q[None], pm) * rope(k[None], pn)).sum()


@pytest.mark.parametrize("offset", [1, 37, 1000, 10_000])
def test_scores_depend_on_relative_position_only(offset):
    torch.manual_seed(0)
    rope, q, k = RotaryEmbedding(64), torch.randn(64), torch.randn(64)
    for m, n in [(0, 0), (3, 17), (50, 2), (255, 256)]:
        # A float32 angle m * theta carries an absolute error of about eps * m (5e-4 rad near 1e4, as
        # in every peer), so the tolerance grows with the position beyond 1000.
        tol = 1e-5 * max(1.0, (n + offset) / 1000) * (q.norm() * k.norm()).item()
        assert abs(_score(rope, q, k, m, n) - _score(rope, q, k, m + offset, n + offset)) < tol
    assert abs(_score(rope, q, k, 3, 17) - _score(rope, q, k, 17, 3)) > 1e-2  # but not symmetric


def test_rotation_is_orthogonal_identity_at_zero_and_complex_in_2d():
    torch.manual_seed(0)
    x = torch.randn(4, 10, 32)
    rope = RotaryEmbedding(32)
    torch.testing.assert_close(rope(x).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rope(x, torch.zeros(10)), x)
    z = torch.randn(5, 2)
    m = torch.arange(5.0)
    expected = torch.view_as_real(torch.view_as_complex(z) * torch.exp(1j * m))  # theta_0 = 1
    torch.testing.assert_close(RotaryEmbedding(2)(z, m), expected)


def test_equals_rotary_embedding_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 50, 64)  # (B, H, T, d), sequence dim -2 as the peer expects
    torch.testing.assert_close(RotaryEmbedding(64)(x), PeerRoPE(64).rotate_queries_or_keys(x), atol=1e-6, rtol=0)
    # Partial rotary: the first 32 features rotate, the rest pass through.
    peer = PeerRoPE(32)
    freqs = peer(torch.arange(50.0))
    torch.testing.assert_close(RotaryEmbedding(32)(x), apply_rotary_emb(freqs, x), atol=1e-6, rtol=0)
    # NTK-aware scaling == theta_rescale_factor; position interpolation == fractional positions.
    torch.testing.assert_close(RotaryEmbedding(64, ntk_factor=4.0)(x),
                               PeerRoPE(64, theta_rescale_factor=4.0).rotate_queries_or_keys(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(RotaryEmbedding(64)(x, torch.arange(50) / 2),
                               PeerRoPE(64, interpolate_factor=2.0).rotate_queries_or_keys(x), atol=1e-6, rtol=0)


def test_cached_keys_offset_equals_the_peer_and_slicing():
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 3, 32), torch.randn(1, 2, 12, 32)
    rope = RotaryEmbedding(32)
    pq, pk = PeerRoPE(32).rotate_queries_with_cached_keys(q, k)
    torch.testing.assert_close(rope(q, offset=9), pq, atol=1e-6, rtol=0)
    torch.testing.assert_close(rope(k), pk, atol=1e-6, rtol=0)
    longer = rope(torch.cat([k[:, :, :9], q], 2))
    torch.testing.assert_close(rope(q, offset=9), longer[:, :, 9:])


def test_axial_allocation_equals_the_peers_axial_frequencies():
    torch.manual_seed(0)
    h, w, d = 3, 5, 32
    x = torch.randn(2, h * w, d)
    freqs = PeerRoPE(d // 2).get_axial_freqs(h, w).reshape(h * w, d)  # rows, then columns
    rope = RotaryEmbedding(d, n_axes=2, allocation="axial")
    torch.testing.assert_close(rope(x, grid_positions(h, w)), apply_rotary_emb(freqs, x), atol=1e-6, rtol=0)


def test_half_split_is_the_interleaved_rope_permuted():
    torch.manual_seed(0)
    x, pos = torch.randn(3, 9, 16), torch.arange(9) * 7
    perm = half_split_permutation(16)
    inter = RotaryEmbedding(16)(x, pos)
    half = RotaryEmbedding(16, pairing="half")(x[..., perm], pos)
    torch.testing.assert_close(half, inter[..., perm])


def test_meta_complex_and_hf_rotate_half_formulas():
    """Transcriptions of Meta Llama's ``apply_rotary_emb`` and HF's ``rotate_half`` form."""
    torch.manual_seed(0)
    d, t = 32, 20
    x, pos = torch.randn(2, t, d), torch.arange(t)
    theta = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    freqs_cis = torch.polar(torch.ones(t, d // 2), torch.outer(pos.float(), theta))
    meta = torch.view_as_real(torch.view_as_complex(x.reshape(2, t, d // 2, 2)) * freqs_cis).flatten(-2)
    torch.testing.assert_close(RotaryEmbedding(d)(x, pos), meta, atol=1e-6, rtol=0)

    emb = torch.cat([torch.outer(pos.float(), theta)] * 2, -1)
    rotate_half = torch.cat([-x[..., d // 2:], x[..., : d // 2]], -1)
    hf = x * emb.cos() + rotate_half * emb.sin()
    torch.testing.assert_close(RotaryEmbedding(d, pairing="half")(x, pos), hf, atol=1e-6, rtol=0)


def test_bf16_input_keeps_float32_angles():
    rope = RotaryEmbedding(64)
    pos = torch.tensor([4095, 257, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        angles = rope.angles(pos)
        out = rope(torch.randn(3, 64, dtype=torch.bfloat16), pos)
    assert angles.dtype == torch.float32 and out.dtype == torch.bfloat16
    exact = pos.double()[:, None] * rope_frequencies(64).double()
    assert (angles.double() - exact).abs().max() < 1e-6 * 4095
    assert torch.equal(angles, pos.float()[:, None] * rope_frequencies(64))
    rope.to(torch.bfloat16)  # the frequency buffer stays float32
    assert rope.inv_freq.dtype == torch.float32


def test_ntk_scaling_interpolates_the_lowest_frequency_exactly():
    base, ntk = rope_frequencies(128), rope_frequencies(128, ntk_factor=16384 / 4096)
    assert ntk[0] == base[0]
    assert math.isclose((ntk[-1] / base[-1]).item(), 0.25, rel_tol=1e-5)


def test_rope_decays_with_relative_distance_on_average():
    """Su 8265: mean |S_j|, S_j = sum_{i<j} exp(i (m-n) theta_i), falls with distance (d = 128)."""
    theta = rope_frequencies(128).double()
    rel = torch.arange(257, dtype=torch.float64)
    mean_abs = torch.cumsum(torch.exp(1j * rel[:, None] * theta), 1).abs().mean(1)  # (257,)
    windows = mean_abs[1:].view(4, 64).mean(1)
    assert mean_abs[0] > windows[0] and all(windows[i] > windows[i + 1] for i in range(3))


def test_log_n_scale():
    assert log_n_scale(512, 512).item() == pytest.approx(1.0)
    assert log_n_scale(4, 512) == log_n_scale(16, 512)  # floored at 16
    f = log_n_scale(torch.arange(1, 5000), 512)
    assert bool((f[1:] >= f[:-1]).all())
    posthoc = log_n_scale(torch.arange(1, 600), 512, floor=512)  # max(1, ln n / ln L_train)
    assert bool((posthoc[:512] == 1).all()) and bool((posthoc[512:] > 1).all())


def test_bad_input_fails_clearly():
    with pytest.raises(ValueError, match="positive even"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match="pairing='split'"):
        RotaryEmbedding(8, pairing="split")
    with pytest.raises(ValueError, match="allocation='diagonal'"):
        RotaryEmbedding(8, n_axes=2, allocation="diagonal")
    with pytest.raises(ValueError, match="needs at least 16"):
        RotaryEmbedding(16)(torch.randn(3, 8))
    with pytest.raises(ValueError, match=r"n_axes=2, T\)"):
        RotaryEmbedding(8, n_axes=2)(torch.randn(3, 8), torch.arange(3))
    with pytest.raises(ValueError, match="do not match 3 tokens"):
        RotaryEmbedding(8)(torch.randn(3, 8), torch.arange(4))
    with pytest.raises(ValueError, match="ntk_factor"):
        RotaryEmbedding(8, ntk_factor=0.5)


def test_cos_sin_cache_follows_the_positions_tensor():
    rope = RotaryEmbedding(8)
    x, pos = torch.randn(1, 4, 8), torch.arange(4)
    first = rope(x, pos)
    pos.add_(3)  # edited in place: the cache must notice
    torch.testing.assert_close(rope(x, pos), rope(x, offset=3))
    assert not torch.allclose(first, rope(x, pos))
    with torch.inference_mode():
        rope(x)
    rope(x.requires_grad_()).sum().backward()  # no inference tensors reused under autograd
