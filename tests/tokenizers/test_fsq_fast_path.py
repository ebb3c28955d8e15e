"""FSQ's fast path (rows of 16 vectors, tiled constants, block-diagonal index matmul) against the
per-vector layout it falls back to and against vector-quantize-pytorch, bit for bit."""

import pytest
import torch
from vector_quantize_pytorch import FSQ as PeerFSQ

from genlab.tokenizers import FSQ


@pytest.mark.parametrize("vectors", [2048, 2056, 15])  # a multiple of 16 (rows of 16), and two that are not
@pytest.mark.parametrize("levels,num_codebooks", [([8, 6, 5], 1), ([8, 8, 8, 6, 5], 1), ([8, 5, 5, 5], 3)])
def test_fast_path_equals_peer_bit_for_bit(vectors, levels, num_codebooks):
    g = torch.Generator().manual_seed(vectors)
    z = (torch.randn(1, vectors, len(levels) * num_codebooks, generator=g) * 2).requires_grad_()
    weights = torch.randn(z.shape, generator=g)
    q, idx, _ = FSQ(levels, num_codebooks=num_codebooks)(z)
    q_peer, idx_peer = PeerFSQ(levels, num_codebooks=num_codebooks)(z)
    assert torch.equal(q, q_peer) and torch.equal(idx, idx_peer.long())
    (grad,) = torch.autograd.grad((q * weights).sum(), z)
    (grad_peer,) = torch.autograd.grad((q_peer * weights).sum(), z)
    torch.testing.assert_close(grad, grad_peer, rtol=1e-6, atol=1e-7)


def test_channel_first_noncontiguous_input_and_indices_only():
    fsq = FSQ([8, 5, 5, 5], channel_first=True)
    z = torch.randn(2, 4, 8, 8, requires_grad=True)
    q, idx, _ = fsq(z)
    q_ref, idx_ref, _ = FSQ([8, 5, 5, 5])(z.detach().movedim(1, -1))
    assert torch.equal(q, q_ref.movedim(-1, 1)) and torch.equal(idx, idx_ref)
    assert idx.shape == (2, 8, 8) and not idx.requires_grad
    assert torch.equal(fsq.indices_to_codes(idx), q.detach())


def test_nonfinite_input_still_raises():
    with pytest.raises(ValueError, match="NaN or Inf"):
        FSQ([8, 5, 5, 5])(torch.tensor([[0.0, float("inf"), 0.0, 0.0]]))
