"""Streams: hand-computed RoPE-Tie positions, shared vocabulary ranges, batches, and decode-time
position counters that agree with the one-shot positions."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab.lm.stream import (IMAGE, TEXT, ImageTokens, PositionCounter, StreamBuilder, Vocabulary, collate,
                              loss_mask)
from genlab.lm.text import ByteTokenizer as T

vocab = Vocabulary(image_codebook_size=10)


def test_rope_tie_positions_of_a_text_image_text_stream_by_hand():
    # RoPE-Tie (kexue.fm 10040): text 0..4 (L = 4), h = 2, w = 3 -> s = w + 1 = 4, t = h + 1 = 3.
    s = StreamBuilder(vocab, "rope_tie").build(["abc", ImageTokens(torch.arange(6), 2, 3), "de"], eos=False)
    assert s.tokens.tolist() == [T.BOS, 97, 98, 99, T.BEGIN_IMAGE, *range(261, 267), T.END_IMAGE, 100, 101]
    expected = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4),
                (8, 7), (8, 10), (8, 13), (12, 7), (12, 10), (12, 13),
                (16, 16), (17, 17), (18, 18)]
    assert s.positions.T.tolist() == [list(map(float, p)) for p in expected]
    assert s.positions.dtype == torch.float32 and s.next_pos == 19
    assert s.kinds.tolist() == [TEXT] * 5 + [IMAGE] * 6 + [TEXT] * 3
    # symmetry: first patch - last text before == next text - last patch
    assert torch.equal(s.positions[:, 5] - s.positions[:, 4], s.positions[:, 11] - s.positions[:, 10])


def test_rope_tv_and_flatten_positions_by_hand():
    items = ["abc", ImageTokens(torch.arange(6), 2, 3), "de"]
    tv = StreamBuilder(vocab, "rope_tv").build(items, eos=False).positions.T.tolist()
    assert tv[5:11] == [[7, 6.5], [7, 7.5], [7, 8.5], [8, 6.5], [8, 7.5], [8, 8.5]]  # RoPE-TV (kexue.fm 10352)
    assert tv[11] == [11, 11]
    flat = StreamBuilder(vocab, "flatten1d").build(items, eos=False).positions
    assert torch.equal(flat, torch.arange(14.0).expand(2, 14))


def test_pure_text_is_the_same_in_every_mode():
    streams = [StreamBuilder(vocab, m).build(["hello"]) for m in ("rope_tie", "rope_tv", "flatten1d")]
    for s in streams:
        assert torch.equal(s.positions, torch.arange(7.0).expand(2, 7))


def test_image_ids_live_after_the_text_ids():
    assert vocab.image_offset == 261 and vocab.size == 271
    assert vocab.image_to_tokens(torch.tensor([0, 9])).tolist() == [261, 270]
    assert vocab.tokens_to_image(torch.tensor([261, 270])).tolist() == [0, 9]


def test_image_whose_token_count_does_not_match_its_grid_raises():
    with pytest.raises(ValueError, match="image has 5 tokens but its grid 2 x 3 needs 6"):
        ImageTokens(torch.arange(5), 2, 3)
    with pytest.raises(ValueError, match="an image grid must be"):
        ImageTokens.from_grid(torch.arange(6))


@pytest.mark.parametrize("call, message", [
    (lambda: vocab.image_to_tokens(torch.tensor([10])), r"image indices must lie in \[0, 10\); got values in \[10, 10\]"),
    (lambda: vocab.image_to_tokens(torch.tensor([0.5])), "image indices must be an integer tensor"),
    (lambda: vocab.tokens_to_image(torch.tensor([97])), r"tokens must be image ids in \[261, 271\); got \[97\]"),
    (lambda: vocab.check_tokens(torch.tensor([271])), r"tokens must be ids in \[0, 271\)"),
    (lambda: vocab.check_tokens(torch.tensor([-1])), r"tokens must be ids in \[0, 271\)"),
    (lambda: StreamBuilder(vocab).build(["a", 3]), r"items\[1\] must be a str or ImageTokens; got int"),
    (lambda: StreamBuilder(vocab).build("abc"), "wrap a single item in a list"),
    (lambda: StreamBuilder(vocab, "rope").build([]), "mode='rope' is not supported"),
])
def test_bad_input_raises_clearly(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_collate_pads_right_and_masks_the_loss_by_kind():
    b = StreamBuilder(vocab)
    s1 = b.build(["ab", ImageTokens(torch.arange(4), 2, 2)])
    s2 = b.build(["x"])
    batch = collate([s1, s2])
    assert batch.tokens.shape == (2, len(s1.tokens)) and batch.positions.shape == (2, 2, len(s1.tokens))
    assert batch.lengths.tolist() == [len(s1.tokens), 3]
    assert batch.tokens[1, 3:].eq(T.PAD).all() and not batch.padding_mask[1, 3:].any()
    image = loss_mask(batch, "image")
    assert image[0].sum() == 4 and not image[1].any()  # targets are tokens[:, 1:]
    assert torch.equal(loss_mask(batch, "text") | image, loss_mask(batch, "all"))
    assert torch.equal(batch.next_pos, torch.tensor([s1.next_pos, s2.next_pos]))


def test_parse_inverts_build():
    b = StreamBuilder(vocab)
    items = ["héllo ", ImageTokens(torch.tensor([1, 2, 3, 4]), 2, 2), " bye"]
    parsed = b.parse(b.build(items).tokens, (2, 2))
    assert parsed[0] == "héllo " and parsed[2] == " bye" and torch.equal(parsed[1].indices, items[1].indices)
    with pytest.raises(ValueError, match=r"must be 2 image ids then END_IMAGE \(grid 1 x 2\)"):
        b.parse(b.build(items).tokens, (1, 2))


segment = st.one_of(st.text(max_size=4), st.tuples(st.integers(1, 3), st.integers(1, 3)))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(segment, max_size=4), min_size=1, max_size=3), st.sampled_from(["rope_tie", "rope_tv", "flatten1d"]))
def test_decode_counter_equals_one_shot_positions(batch_items, mode):
    b = StreamBuilder(vocab, mode)
    grid = (2, 3)
    streams = []
    for items in batch_items:
        items = [x if isinstance(x, str) else ImageTokens(torch.arange(6) % 10, *grid) for x in items]
        streams.append(b.build(items))
    batch = collate(streams)
    # Start every counter after its BOS and feed the rest of its stream one token per step.
    counter = PositionCounter(vocab, batch.positions[0, :, 0] + 1, torch.zeros(len(streams), dtype=torch.bool), grid, mode)
    steps = [counter.advance(batch.tokens[:, t], batch.padding_mask[:, t]) for t in range(1, batch.tokens.shape[1])]
    got = torch.stack(steps, -1)  # (2, B, T - 1)
    mask = batch.padding_mask[:, 1:]
    assert torch.equal(got[:, mask], batch.positions[:, :, 1:][:, mask])
    assert torch.equal(counter.next, batch.next_pos)


def test_counter_starts_inside_an_open_image_and_enforces_the_grammar():
    b = StreamBuilder(vocab)
    prompt = collate([b.build(["seven"], eos=False, begin_image=True)])
    full = b.build(["seven", ImageTokens(torch.arange(4), 2, 2)])
    counter = PositionCounter(vocab, prompt.next_pos, prompt.open_image, (2, 2), "rope_tie")
    n = prompt.tokens.shape[1]
    with pytest.raises(ValueError, match="must be an image id here"):
        counter.advance(torch.tensor([97]))
    for t in range(n, n + 4):
        assert torch.equal(counter.advance(full.tokens[t:t + 1])[:, 0], full.positions[:, t])
    with pytest.raises(ValueError, match="must be END_IMAGE here"):
        counter.advance(torch.tensor([T.EOS]))
    assert torch.equal(counter.advance(torch.tensor([T.END_IMAGE]))[:, 0], full.positions[:, n + 4])
    with pytest.raises(ValueError, match="must be a text id other than END_IMAGE"):
        counter.advance(torch.tensor([261]))
