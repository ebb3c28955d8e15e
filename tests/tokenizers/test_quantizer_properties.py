"""Property tests (hypothesis) for both quantizers: shapes, dtypes, level sets and round trips on
random level sets, codebook sizes, layouts and input scales."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab.tokenizers import FSQ, VectorQuantizer

shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3)  # leading (batch / spatial) axes
scales = st.sampled_from([0.1, 1.0, 10.0])
seeds = st.integers(0, 2**16)


def _input(seed: int, lead: list[int], channels: int, scale: float, channel_first: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = [*lead, channels] if not channel_first else [max(lead[:1] or [1]), channels, *lead[1:]]
    return torch.randn(shape, generator=g) * scale


@settings(max_examples=25, deadline=None)
@given(levels=st.lists(st.integers(3, 8), min_size=1, max_size=5), lead=shapes, scale=scales, seed=seeds,
       channel_first=st.booleans(), dtype=st.sampled_from([torch.float32, torch.bfloat16]))
def test_fsq_shapes_levels_and_round_trip(levels, lead, scale, seed, channel_first, dtype):
    fsq = FSQ(levels, channel_first=channel_first)
    z = _input(seed, lead, len(levels), scale, channel_first).to(dtype)
    q, idx, loss = fsq(z)
    assert q.shape == z.shape and q.dtype == dtype and loss.item() == 0
    channel_axis = 1 if channel_first else -1
    assert idx.dtype == torch.long and idx.shape == z.movedim(channel_axis, -1).shape[:-1]
    assert 0 <= idx.min() and idx.max() < math.prod(levels)
    # level set: every channel takes one of its L values (L // 2 * code is an integer in range)
    codes = fsq.indices_to_codes(idx).movedim(channel_axis, -1)  # float32
    assert torch.equal(q, fsq.indices_to_codes(idx).to(dtype))  # the forward's codes, in the caller's dtype
    half = torch.tensor([L // 2 for L in levels], dtype=torch.float32)
    ints = codes * half
    assert torch.equal(ints, ints.round())
    hi = torch.tensor([L - 1 - L // 2 for L in levels], dtype=torch.float32)
    assert ((ints >= -half) & (ints <= hi)).all()
    assert torch.equal(fsq.codes_to_indices(codes), idx)  # and back to the indices


@pytest.mark.filterwarnings("ignore:k-means initialisation got")  # tiny inputs: fewer vectors than codes
@settings(max_examples=25, deadline=None)
@given(dim=st.integers(1, 8), codebook_size=st.integers(1, 300), codebook_dim=st.one_of(st.none(), st.integers(1, 6)),
       distance=st.sampled_from(["l2", "cosine"]), lead=shapes, scale=scales, seed=seeds,
       channel_first=st.booleans(), chunk=st.sampled_from([1, 37, 2**22]))
def test_vq_shapes_codes_and_round_trip(dim, codebook_size, codebook_dim, distance, lead, scale, seed, channel_first, chunk):
    torch.manual_seed(seed)
    vq = VectorQuantizer(dim, codebook_size, codebook_dim=codebook_dim, distance=distance, channel_first=channel_first,
                         distance_chunk=chunk, kmeans_init=True, dead_code_threshold=0.5)
    z = _input(seed, lead, dim, scale, channel_first)
    out = vq(z)  # training step: k-means init, EMA update, dead-code reset
    assert out.quantized.shape == z.shape and out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    channel_axis = 1 if channel_first else -1
    assert out.indices.dtype == torch.long and out.indices.shape == z.movedim(channel_axis, -1).shape[:-1]
    assert (out.indices >= 0).all() and (out.indices < codebook_size).all()

    vq.eval()
    with torch.no_grad():  # with gradients the straight-through output z + sg[q - z] equals q up to rounding
        q, idx, _ = vq(z)
        assert torch.equal(vq.indices_to_codes(idx), q)  # round trip through the indices
    x = vq.project_in(z.movedim(channel_axis, -1)).reshape(-1, vq.codebook_dim)
    if distance == "cosine":
        x = torch.nn.functional.normalize(x, dim=-1, eps=1e-6)
    codes = vq.indices_to_codes(idx, project=False).movedim(channel_axis, -1).reshape(-1, vq.codebook_dim)
    # the level set of VQ is its codebook: every output is a code, and the nearest one
    assert all((vq.codebook == c).all(1).any() for c in codes)
    # squared distances, up to the float32 rounding of the expanded form ||x||^2 + ||e||^2 - 2 x.e
    x = x.detach().double()
    d = torch.cdist(x, vq.codebook.double()).square()
    chosen = d.gather(1, idx.reshape(-1, 1)).squeeze(1)
    tolerance = 1e-5 * (x.square().sum(1) + vq.codebook.double().square().sum(1).max())
    assert (chosen <= d.min(1).values + tolerance).all()
