"""Stream positions (RoPE-Tie v1, RoPE-TV v2, flatten): worked examples from Su's posts, pure text ==
RoPE-1D in every mode, symmetry and equivalence, translation invariance, decoding positions,
padded batches; RoPE-2D allocations."""

import pytest
import torch

from genlab.nn.positions import MODES, build_positions, sequence_positions
from genlab.nn.rope import RotaryEmbedding, grid_positions, rotate


def _pairs(pos):
    return [tuple(p) for p in pos.T.tolist()]


def test_rope_tie_worked_example():
    """RoPE-Tie (kexue.fm 10040): text 0..4, an h=2 x w=3 image, two more text tokens."""
    pos, nxt = sequence_positions([("text", 5), ("image", 2, 3), ("text", 2)], "rope_tie")
    assert _pairs(pos[:, 5:11]) == [(8, 7), (8, 10), (8, 13), (12, 7), (12, 10), (12, 13)]
    assert _pairs(pos[:, 11:]) == [(16, 16), (17, 17)] and nxt == 18
    assert (pos[:, 5] - pos[:, 4]).tolist() == (pos[:, 11] - pos[:, 10]).tolist() == [4, 3]  # symmetry


def test_rope_tv_worked_example():
    """RoPE-TV (kexue.fm 10352): the same stream."""
    pos, nxt = sequence_positions([("text", 5), ("image", 2, 3), ("text", 2)], "rope_tv")
    assert _pairs(pos[:, 5:11]) == [(7, 6.5), (7, 7.5), (7, 8.5), (8, 6.5), (8, 7.5), (8, 8.5)]
    assert _pairs(pos[:, 11:]) == [(11, 11), (12, 12)] and nxt == 13
    assert (pos[:, 5] - pos[:, 4]).tolist() == (pos[:, 11] - pos[:, 10]).tolist() == [3, 2.5]


@pytest.mark.parametrize("mode", MODES)
def test_pure_text_is_rope_1d_bitwise(mode):
    pos, nxt = sequence_positions([("text", 40)], mode)
    assert nxt == 40 and torch.equal(pos, torch.arange(40.0).expand(2, 40))
    x = torch.randn(3, 40, 64)
    assert torch.equal(RotaryEmbedding(64, n_axes=2)(x, pos), RotaryEmbedding(64)(x, torch.arange(40)))


@pytest.mark.parametrize("mode", ["rope_tie", "rope_tv"])
@pytest.mark.parametrize("h, w", [(1, 1), (2, 5), (4, 3), (6, 6)])
def test_symmetry_and_equivalence(mode, h, w):
    pos, nxt = sequence_positions([("text", 3), ("image", h, w), ("text", 1)], mode)
    first, last_patch, last_text, next_text = pos[:, 3], pos[:, 2 + h * w], pos[:, 2], pos[:, -1]
    assert torch.equal(first - last_text, next_text - last_patch)
    if mode == "rope_tv":
        assert next_text[0] - last_text[0] == h * w + 1  # an image counts as h*w tokens
    else:
        assert next_text[0] - last_text[0] == (w + 1) * (h + 1)
    assert nxt == next_text[0] + 1


@pytest.mark.parametrize("mode", MODES)
def test_translation_leaves_scores_unchanged(mode):
    torch.manual_seed(0)
    pos, _ = sequence_positions([("text", 2), ("image", 3, 2), ("text", 3)], mode)
    rope = RotaryEmbedding(32, n_axes=2)
    q, k = torch.randn(pos.shape[1], 32), torch.randn(pos.shape[1], 32)
    scores = rope(q, pos) @ rope(k, pos).T
    torch.testing.assert_close(rope(q, pos + 100) @ rope(k, pos + 100).T, scores, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_decoding_continues_from_next_pos(mode):
    """Prefill text + image, then generate text: the counter matches the one-shot positions."""
    whole, _ = sequence_positions([("text", 3), ("image", 2, 2), ("text", 3)], mode)
    prefix, nxt = sequence_positions([("text", 3), ("image", 2, 2)], mode)
    decoded = [sequence_positions([("text", 1)], mode, start=nxt + i)[0] for i in range(3)]
    assert torch.equal(torch.cat([prefix, *decoded], 1), whole)


def test_padded_batch_and_next_positions():
    batch = [[("text", 2), ("image", 2, 2)], [("text", 5)], [("image", 1, 3), ("text", 1)]]
    positions, nxt, mask = build_positions(batch, "rope_tie")
    assert positions.shape == (2, 3, 6) and mask.sum(1).tolist() == [6, 5, 4]
    for b, segs in enumerate(batch):
        pos, n = sequence_positions(segs, "rope_tie")
        assert torch.equal(positions[:, b, : pos.shape[1]], pos) and nxt[b] == n
        assert not positions[:, b, pos.shape[1]:].any()


def test_bad_segments_fail_clearly():
    with pytest.raises(ValueError, match="segment"):
        sequence_positions([("image", 0, 3)])
    with pytest.raises(ValueError, match="segment"):
        sequence_positions([("audio", 3)])
    with pytest.raises(ValueError, match="mode='mrope3'"):
        sequence_positions([("text", 3)], "mrope3")


# --- RoPE-2D allocations ---------------------------------------------------------

def _scores2d(rope, q, k, a, b):
    return (rope(q[None], torch.tensor(a, dtype=torch.float32)[:, None]) * rope(k[None], torch.tensor(b, dtype=torch.float32)[:, None])).sum()


@pytest.mark.parametrize("allocation", ["alternating", "blocked", "axial"])
def test_rope_2d_is_relative_in_both_axes(allocation):
    torch.manual_seed(0)
    rope, q, k = RotaryEmbedding(32, n_axes=2, allocation=allocation), torch.randn(32), torch.randn(32)
    torch.testing.assert_close(_scores2d(rope, q, k, (3, 5), (7, 2)), _scores2d(rope, q, k, (13, 15), (17, 12)))
    assert not torch.allclose(_scores2d(rope, q, k, (3, 5), (7, 2)), _scores2d(rope, q, k, (3, 5), (2, 7)))


def test_diagonal_positions_are_rope_1d_only_for_shared_frequencies():
    x, n = torch.randn(5, 16, 32), torch.arange(16)
    one_d = RotaryEmbedding(32)(x, n)
    assert torch.equal(RotaryEmbedding(32, n_axes=2)(x, n.expand(2, 16)), one_d)  # alternating: bitwise
    assert torch.equal(RotaryEmbedding(32, n_axes=2, allocation="blocked")(x, n.expand(2, 16)), one_d)
    assert not torch.allclose(RotaryEmbedding(32, n_axes=2, allocation="axial")(x, n.expand(2, 16)), one_d)  # the trap


@pytest.mark.parametrize("allocation", ["alternating", "blocked", "axial"])
def test_one_row_image_is_rope_1d_on_the_column_pairs(allocation):
    """A 1 x n image (constant row position) scores like RoPE-1D applied to the column pairs only."""
    torch.manual_seed(0)
    rope = RotaryEmbedding(32, n_axes=2, allocation=allocation)
    q, k = torch.randn(10, 32), torch.randn(10, 32)
    pos = grid_positions(1, 10) + torch.tensor([[7.0], [0.0]])  # any constant row
    scores = rope(q, pos) @ rope(k, pos).T
    col = (rope.axis_of_pair == 1).repeat_interleave(2)  # features of the column pairs
    ang = torch.arange(10.0)[:, None] * rope.inv_freq[rope.axis_of_pair == 1]
    q1, k1 = q.clone(), k.clone()
    q1[:, col], k1[:, col] = rotate(q[:, col], ang.cos(), ang.sin()), rotate(k[:, col], ang.cos(), ang.sin())
    torch.testing.assert_close(scores, q1 @ k1.T, atol=1e-5, rtol=1e-5)
