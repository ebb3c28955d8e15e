"""Attention: equals a written-out softmax attention with RoPE and masks; the log-n scale
(equal to the default at train_len, per-row n under causal masks, post-hoc floor); fully masked
rows; bf16."""

import math

import pytest
import torch

from genlab.nn import Attention, KVCache, RotaryEmbedding
from genlab.nn.attention import attention_mask, masked_attention


def _reference(attn, x, mask, log_n_floor=None):
    """softmax(q k^T * c_row / sqrt(d) masked) v, written out in float64."""
    b, t, _ = x.shape
    q, k, v = attn.qkv(x).double().view(b, t, 3, attn.heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    if attn.rope is not None:
        q, k = attn.rope(q.float(), None).double(), attn.rope(k.float(), None).double()
    logits = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)  # (B, H, T, S)
    if log_n_floor is not None:
        n = mask.sum(-1, keepdim=True).double()
        logits = logits * n.clamp_min(log_n_floor).log() / math.log(attn.train_len)
    p = logits.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
    return attn.out((p @ v).transpose(1, 2).reshape(b, t, -1).float())


@pytest.mark.parametrize("scale", ["default", "log_n"])
def test_equals_written_out_attention_with_causal_and_padding_masks(scale):
    torch.manual_seed(0)
    attn = Attention(32, heads=4, rope=RotaryEmbedding(8), scale=scale, train_len=5)
    x = torch.randn(2, 9, 32)
    pad = torch.ones(2, 9, dtype=torch.bool)
    pad[1, 6:] = False
    for causal in (False, True):
        mask = attention_mask(2, 9, 9, 0, causal, pad, x.device)
        out = attn(x, key_padding_mask=pad, causal=causal)
        ref = _reference(attn, x, mask, 16 if scale == "log_n" else None)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # Causal without padding takes SDPA's is_causal path; same numbers.
    full = attention_mask(2, 9, 9, 0, True, None, x.device)
    torch.testing.assert_close(attn(x, causal=True), _reference(attn, x, full, 16 if scale == "log_n" else None),
                               atol=1e-5, rtol=1e-5)


def test_log_n_equals_default_at_train_len_and_grows_with_n():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 2, 1, 64, 8).unbind(0)
    mask = torch.ones(1, 1, 1, 64, dtype=torch.bool)
    plain = masked_attention(q, k, v, mask, 8 ** -0.5)
    torch.testing.assert_close(masked_attention(q, k, v, mask, 8 ** -0.5, log_n_train_len=64), plain)
    # Fewer visible keys than train_len: a flatter softmax (lower temperature factor) than at train_len.
    sharp = [masked_attention(q, k, v, mask, 8 ** -0.5, log_n_train_len=n) for n in (16, 64, 512)]
    assert sharp[0].std() > sharp[1].std() > sharp[2].std()


def test_log_n_uses_each_rows_own_key_count_under_causal_masks():
    torch.manual_seed(0)
    attn = Attention(16, heads=2, scale="log_n", train_len=8, log_n_floor=1).eval()
    x = torch.randn(1, 20, 16)
    mask = attention_mask(1, 20, 20, 0, True, None, x.device)
    torch.testing.assert_close(attn(x, causal=True), _reference(attn, x, mask, 1), atol=1e-5, rtol=1e-5)


def test_post_hoc_floor_leaves_short_contexts_untouched():
    torch.manual_seed(0)
    x = torch.randn(1, 12, 16)
    plain = Attention(16, heads=2)
    posthoc = Attention(16, heads=2, scale="log_n", train_len=12, log_n_floor=12)
    posthoc.load_state_dict(plain.state_dict())
    torch.testing.assert_close(posthoc(x, causal=True), plain(x, causal=True))
    assert not torch.allclose(posthoc(torch.randn(1, 40, 16)), plain(torch.randn(1, 40, 16)))


def test_fully_masked_rows_give_zeros_not_nan():
    attn = Attention(16, heads=2, scale="log_n")
    x = torch.randn(2, 4, 16, requires_grad=True)
    pad = torch.tensor([[True] * 4, [False] * 4])
    out = attn(x, key_padding_mask=pad)
    assert torch.isfinite(out).all() and torch.equal(out[1], attn.out(torch.zeros(4, 16)))
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad[1], torch.zeros(4, 16))
    # The documented choice (no error, no host sync per layer): the padded sequence leaves the others alone.
    torch.testing.assert_close(out[0], attn(x[:1], key_padding_mask=pad[:1])[0], rtol=0, atol=0)


def test_cache_with_offset_positions():
    torch.manual_seed(0)
    attn = Attention(16, heads=2, rope=RotaryEmbedding(8)).eval()
    x = torch.randn(2, 6, 16)
    cache = KVCache()
    parts = [attn(x[:, :2], causal=True, cache=cache), attn(x[:, 2:], causal=True, cache=cache)]
    torch.testing.assert_close(torch.cat(parts, 1), attn(x, causal=True), atol=1e-6, rtol=1e-5)


def test_dropout_only_while_training():
    torch.manual_seed(0)
    attn = Attention(16, heads=2, dropout=0.5)
    x = torch.randn(1, 8, 16)
    assert not torch.equal(attn(x), attn(x))
    attn.eval()
    assert torch.equal(attn(x), attn(x))


def test_bf16_and_bad_arguments():
    attn = Attention(16, heads=2, rope=RotaryEmbedding(8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert attn(torch.randn(1, 5, 16), causal=True).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="scale='cosine'"):
        Attention(16, scale="cosine")
    with pytest.raises(ValueError, match="not divisible by heads=3"):
        Attention(16, heads=3)
    with pytest.raises(ValueError, match="heads=0"):
        Attention(16, heads=0)
