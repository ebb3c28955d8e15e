"""FSQ: bit-exact equality with vector-quantize-pytorch, hand-computed test vectors, round trips,
autocast, layouts and bad input."""

import math

import numpy as np
import pytest
import torch
from vector_quantize_pytorch import FSQ as PeerFSQ

from genlab.tokenizers import FSQ
from genlab.tokenizers.fsq import BOUNDS, MAX_CODEBOOK_SIZE, MAX_LEVEL

PAPER_LEVELS = [[8, 6, 5], [8, 5, 5, 5], [7, 5, 5, 5, 5], [8, 8, 8, 6, 5], [8, 8, 8, 5, 5, 5]]


@pytest.mark.parametrize("levels", PAPER_LEVELS + [[3, 5, 4], [4, 4, 4, 4]])
@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
def test_codes_and_indices_equal_peer_bit_for_bit(levels, scale):
    g = torch.Generator().manual_seed(len(levels) * 10 + int(scale))
    z = torch.randn(8, 257, len(levels), generator=g) * scale
    ours, peer = FSQ(levels), PeerFSQ(levels)
    q, idx, loss = ours(z)
    q_peer, idx_peer = peer(z)
    assert torch.equal(q, q_peer)
    assert idx.dtype == torch.long and torch.equal(idx, idx_peer.long())
    assert loss.item() == 0


@pytest.mark.parametrize("num_codebooks", [2, 3])
def test_several_codebooks_equal_peer(num_codebooks):
    levels = [8, 5, 5, 5]
    z = torch.randn(4, 33, 4 * num_codebooks)
    q, idx, _ = FSQ(levels, num_codebooks=num_codebooks)(z)
    q_peer, idx_peer = PeerFSQ(levels, num_codebooks=num_codebooks)(z)
    assert torch.equal(q, q_peer) and torch.equal(idx, idx_peer.long())
    assert idx.shape == (4, 33, num_codebooks)


def test_gradient_equals_peer_autograd():
    levels = [8, 5, 5, 5]
    z = (torch.randn(16, 64, 4) * 2).requires_grad_()
    weights = torch.randn(16, 64, 4)
    (g,) = torch.autograd.grad((FSQ(levels)(z).quantized * weights).sum(), z)
    (g_peer,) = torch.autograd.grad((PeerFSQ(levels)(z)[0] * weights).sum(), z)
    torch.testing.assert_close(g, g_peer, rtol=1e-6, atol=1e-7)
    assert (g != 0).all()  # STE through round: the gradient never vanishes inside the tanh range


SPEC_VECTORS = [  # hand-computed: z, codes, index for levels [8, 5, 5, 5]
    ([0, 0, 0, 0], [0, 0, 0, 0], 500),
    ([0.25, 0.6, -7, 1.2], [0.25, 0.5, -1, 1], 829),
    ([10, 10, 10, 10], [0.75, 1, 1, 1], 999),
    ([-10, -10, -10, -10], [-1, -1, -1, -1], 0),
    ([-0.3, 0.3, 0, -1], [-0.25, 0.5, 0, -1], 107),
]


def test_spec_test_vectors():
    fsq = FSQ([8, 5, 5, 5])
    z = torch.tensor([v[0] for v in SPEC_VECTORS], dtype=torch.float32)
    q, idx, _ = fsq(z)
    assert torch.equal(q, torch.tensor([v[1] for v in SPEC_VECTORS], dtype=torch.float32))
    assert idx.tolist() == [v[2] for v in SPEC_VECTORS]
    assert fsq._basis.tolist() == [1, 8, 40, 200] and fsq.codebook_size == 1000


def test_official_colab_example():
    q, idx, _ = FSQ([3, 5, 4])(torch.tensor([[0.25, 0.6, -7.0]]))
    assert q.tolist() == [[0.0, 0.5, -1.0]] and idx.tolist() == [10]


@pytest.mark.parametrize("levels", PAPER_LEVELS)
def test_round_trip_over_the_whole_codebook(levels):
    fsq = FSQ(levels)
    codes = fsq.implicit_codebook
    assert codes.shape == (math.prod(levels), len(levels))
    ids = torch.arange(fsq.codebook_size)
    assert torch.equal(fsq.codes_to_indices(codes), ids)
    assert torch.equal(fsq.indices_to_codes(ids), codes)


@pytest.mark.parametrize("level", range(3, 9))
def test_each_channel_reaches_exactly_L_values(level):
    fsq = FSQ([level])
    z = torch.linspace(-20, 20, 20001)[:, None]
    assert fsq(z).indices.unique().tolist() == list(range(level))


def _code_centres(fsq: FSQ) -> torch.Tensor:
    """Inputs whose bounded value lands exactly on each integer level (inverse of the bound)."""
    levels = fsq.indices_to_level_indices(torch.arange(fsq.codebook_size)).float() - fsq._levels // 2
    return torch.atanh((levels + fsq._offset) / fsq._half_l) - fsq._shift


def test_bf16_autocast_indices_equal_float32_and_cover_the_codebook():
    fsq = FSQ([8, 5, 5, 5])
    z = _code_centres(fsq).to(torch.bfloat16)  # the caller's dtype is bf16
    ref = fsq(z.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fsq(z)
    assert out.quantized.dtype == torch.bfloat16
    assert torch.equal(out.indices, ref.indices)
    assert out.indices.unique().numel() == fsq.codebook_size


def test_bf16_module_keeps_float32_constants():
    fsq = FSQ([8, 5, 5, 5], dim=16).to(torch.bfloat16)
    assert fsq._half_l.dtype == torch.float32 and fsq._shift.dtype == torch.float32
    assert fsq.project_in.weight.dtype == torch.bfloat16
    out = fsq(torch.randn(2, 10, 16, dtype=torch.bfloat16))
    assert out.quantized.dtype == torch.bfloat16 and out.indices.max() < 1000


def test_projections_when_dim_differs():
    fsq = FSQ([8, 5, 5, 5], dim=32)
    x = torch.randn(2, 7, 32, requires_grad=True)
    q, idx, _ = fsq(x)
    assert q.shape == x.shape and idx.shape == (2, 7)
    q.sum().backward()
    assert x.grad is not None and fsq.project_in.weight.grad is not None
    torch.testing.assert_close(fsq.indices_to_codes(idx), q)


def test_channel_first_equals_channel_last():
    levels = [8, 5, 5, 5]
    x = torch.randn(2, 4, 6, 5)
    q_cf, idx_cf, _ = FSQ(levels, channel_first=True)(x)
    q_cl, idx_cl, _ = FSQ(levels)(x.permute(0, 2, 3, 1))
    assert torch.equal(q_cf, q_cl.permute(0, 3, 1, 2)) and torch.equal(idx_cf, idx_cl)
    assert idx_cf.shape == (2, 6, 5)
    assert torch.equal(FSQ(levels, channel_first=True).indices_to_codes(idx_cf), q_cf)


def test_implicit_codebook_is_lazy():
    fsq = FSQ([4] * 16)  # 4**16 codes: never materialised at construction
    assert fsq.codebook_size == 4**16
    with pytest.raises(ValueError, match="refusing to materialise"):
        fsq.implicit_codebook
    q, idx, _ = fsq(torch.randn(3, 16))
    assert idx.shape == (3,) and idx.max() < 4**16


@pytest.mark.parametrize("levels, match", [
    ([8, 2], "integer >= 3"),
    ([8, 5.0], "Python or NumPy ints"),
    ([], "non-empty"),
    ("8555", "non-empty list"),
    ([8, "5"], "integers >= 3"),
])
def test_bad_levels(levels, match):
    with pytest.raises(ValueError, match=match):
        FSQ(levels)


def test_bad_inputs():
    fsq = FSQ([8, 5, 5, 5])
    with pytest.raises(ValueError, match="expected dim=4"):
        fsq(torch.randn(2, 5))
    with pytest.raises(ValueError, match="NaN or Inf"):
        fsq(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        fsq(torch.tensor([[0.0, float("inf"), 0.0, 0.0]]))
    with pytest.raises(TypeError, match="floating-point"):
        fsq(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="out of range"):
        fsq.indices_to_codes(torch.tensor([1000]))
    with pytest.raises(ValueError, match="out of range"):
        fsq.indices_to_codes(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer tensor"):
        fsq.indices_to_codes(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="outside the FSQ grid"):
        fsq.codes_to_indices(torch.tensor([[2.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="num_codebooks"):
        FSQ([8, 5, 5, 5], num_codebooks=0)


# ----------------------------------------------------------------------------- other bounds

@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [2, 3, 4, 5], [7, 5, 5, 5, 5]])
def test_symmetric_bound_equals_peer_preserve_symmetry(levels):
    z = torch.randn(4, 129, len(levels), generator=torch.Generator().manual_seed(1)) * 2
    q, idx, _ = FSQ(levels, bound="symmetric")(z)
    q_peer, idx_peer = PeerFSQ(levels, preserve_symmetry=True)(z)
    assert torch.equal(q, q_peer) and torch.equal(idx, idx_peer.long())


def test_google_bound_is_the_notebook_formula_and_agrees_with_the_default_on_most_codes():
    levels, eps = torch.tensor([8.0, 5, 5, 5]), 1e-3
    z = torch.randn(20000, 4, generator=torch.Generator().manual_seed(2))
    half_l = (levels - 1) * (1 - eps) / 2
    offset = torch.where(levels % 2 == 0, 0.5, 0.0)
    notebook = torch.round(torch.tanh(z + torch.tan(offset / half_l)) * half_l - offset) / (levels // 2)
    q, idx, _ = FSQ([8, 5, 5, 5], bound="google")(z)
    torch.testing.assert_close(q, notebook, rtol=0, atol=1e-6)
    agree = (idx == FSQ([8, 5, 5, 5])(z).indices).float().mean()
    assert 0.98 <= agree < 1  # spec: about 1% of 4-d vectors get another code


def test_sigmoid_bound_spec_vector():
    q, idx, _ = FSQ([8, 5, 5, 5], bound="sigmoid")(torch.tensor([[0.25, 0.6, -7.0, 1.2]]))
    torch.testing.assert_close(q, torch.tensor([[4 / 7, 3 / 4, 0.0, 3 / 4]]))
    assert idx.tolist() == [628]


@pytest.mark.parametrize("bound", ["google", "sigmoid", "symmetric"])
def test_other_bounds_round_trip_and_reach_every_code(bound):
    fsq = FSQ([8, 6, 5], bound=bound)
    ids = torch.arange(fsq.codebook_size)
    codes = fsq.implicit_codebook
    assert torch.equal(fsq.codes_to_indices(codes), ids) and torch.equal(fsq.indices_to_codes(ids), codes)
    q, idx, _ = fsq(torch.linspace(-6, 6, 4001)[:, None].expand(-1, 3).contiguous() + torch.tensor([0.0, 1.3, -2.1]))
    assert torch.equal(fsq.indices_to_codes(idx), q)  # forward codes equal decoded indices bit for bit


def test_level_two_needs_the_symmetric_bound():
    with pytest.raises(ValueError, match="use bound='symmetric'"):
        FSQ([2, 5])
    assert FSQ([2, 5], bound="symmetric").codebook_size == 10
    with pytest.raises(ValueError, match="bound='tanh' is not supported"):
        FSQ([8, 5], bound="tanh")


@pytest.mark.parametrize("bound", BOUNDS)
def test_the_largest_level_reaches_exactly_its_levels(bound):
    """MAX_LEVEL = 1 / eps: (L - 1) eps / 2 < 1/2 keeps the rounded bound inside L levels; one more
    level would reach a 1002nd (code 1.002, index 2002 for [1001, 3])."""
    fsq = FSQ([MAX_LEVEL, 3], bound=bound)
    z = torch.stack([torch.linspace(-60, 60, 200_001), torch.zeros(200_001)], 1)
    levels = fsq.indices_to_level_indices(fsq(z).indices)[:, 0]
    assert levels.min() == 0 and levels.max() == MAX_LEVEL - 1 and len(levels.unique()) == MAX_LEVEL
    with pytest.raises(ValueError, match="<= MAX_LEVEL=1000 \\(got 1001\\)"):
        FSQ([MAX_LEVEL + 1, 3], bound=bound)


def test_the_largest_codebook_has_exact_int64_indices():
    fsq = FSQ([512] * 7)  # exactly 2**63 codes
    assert fsq.codebook_size == MAX_CODEBOOK_SIZE == 2**63
    out = fsq(torch.tensor([[50.0] * 7, [-50.0] * 7, [0.0] * 7]))
    assert out.indices.tolist() == [2**63 - 1, 0, 256 * sum(512**i for i in range(7))]
    assert torch.equal(fsq.indices_to_codes(out.indices), out.quantized)
    assert torch.equal(fsq.codes_to_indices(out.quantized), out.indices)
    with pytest.raises(ValueError, match="MAX_CODEBOOK_SIZE=2\\*\\*63"):
        FSQ([512] * 6 + [513])
    with pytest.raises(ValueError, match="MAX_CODEBOOK_SIZE"):
        FSQ([1000] * 7)


def test_numpy_integer_levels_equal_python_levels():
    z = torch.randn(50, 4)
    ours = FSQ([np.int64(8), np.int32(5), np.uint8(5), 5])
    assert ours.levels == [8, 5, 5, 5] and all(type(level) is int for level in ours.levels)
    assert torch.equal(ours(z).indices, FSQ([8, 5, 5, 5])(z).indices)


def test_huge_finite_inputs_saturate_instead_of_raising():
    out = FSQ([8, 5, 5, 5])(torch.tensor([[1e38, -1e38, 3e38, 0.0]]))
    assert out.quantized.tolist() == [[0.75, -1.0, 1.0, 0.0]]


def test_codes_off_the_grid_raise_and_grid_codes_round_trip_in_every_dtype():
    fsq = FSQ([7, 5, 5, 8])
    with pytest.raises(ValueError, match="off the FSQ grid .*0.3"):
        fsq.codes_to_indices(torch.tensor([[0.3, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="off the FSQ grid|outside"):
        fsq.codes_to_indices(torch.tensor([[float("nan"), 0.0, 0.0, 0.0]]))
    codes = fsq.implicit_codebook
    for dtype in (torch.float64, torch.float32, torch.bfloat16, torch.float16):
        assert torch.equal(fsq.codes_to_indices(codes.to(dtype)), torch.arange(fsq.codebook_size))
