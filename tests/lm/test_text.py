"""Byte-level tokenizer: exact round trip of any string, specials that text cannot forge, clear errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab.lm.text import ByteTokenizer

tok = ByteTokenizer()


@settings(max_examples=25, deadline=None)
@given(st.text())
def test_any_string_round_trips(text):
    ids = tok.encode(text, bos=True, eos=True)
    assert ids[0] == tok.BOS and ids[-1] == tok.EOS and all(0 <= i < 256 for i in ids[1:-1])
    assert tok.decode(ids, skip_special=True) == text
    assert tok.decode(ids[1:-1]) == text
    assert tok.decode(tok.tensor(text)) == text
    assert len(ids) == len(text.encode("utf-8")) + 2


def test_specials_sit_after_the_bytes_and_print_by_name():
    assert (tok.PAD, tok.BOS, tok.EOS, tok.BEGIN_IMAGE, tok.END_IMAGE) == (256, 257, 258, 259, 260)
    assert tok.vocab_size == 261
    assert tok.decode([tok.BOS, 104, 105, tok.BEGIN_IMAGE, tok.END_IMAGE, tok.EOS]) == \
        "<|bos|>hi<|begin_image|><|end_image|><|eos|>"


def test_text_cannot_forge_a_special_token():
    ids = tok.encode("<|eos|>")
    assert tok.EOS not in ids and tok.decode(ids) == "<|eos|>"


def test_multibyte_characters_split_across_specials_decode_per_run():
    ids = tok.encode("é")  # two bytes
    assert tok.decode(ids[:1] + [tok.EOS] + ids[1:], skip_special=True, errors="replace") == "\ufffd\ufffd"
    with pytest.raises(UnicodeDecodeError):
        tok.decode(ids[:1])


@pytest.mark.parametrize("ids", [[261], [-1], [3.0], torch.tensor([300])])
def test_out_of_range_ids_raise(ids):
    with pytest.raises(ValueError, match=r"ids must be text token ids in \[0, 261\)"):
        tok.decode(ids)


def test_non_string_raises():
    with pytest.raises(TypeError, match="text must be a str; got bytes"):
        tok.encode(b"abc")
