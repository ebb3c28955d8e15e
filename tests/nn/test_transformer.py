"""Transformer blocks and stacks: the KV cache reproduces a full forward pass (attention and GAU,
padding, RoPE-Tie positions), causality, padding invariance, DeepNet scaling at init, bad input."""

import math

import pytest
import torch

from genlab.nn import KVCache, RotaryEmbedding, Transformer, TransformerBlock
from genlab.nn.positions import build_positions
from genlab.nn.transformer import deepnet_constants

D = 32
MIXERS = {
    "attention": dict(mixer="attention", heads=4),
    "attention_log_n": dict(mixer="attention", heads=4, scale="log_n", train_len=8),
    "gau_softmax_plus": dict(mixer="gau", qk_dim=16),
    "gau_relu2": dict(mixer="gau", qk_dim=16, attention="relu2"),
}


def _model(kind, norm="pre", depth=2, rope=None):
    torch.manual_seed(0)
    return Transformer(D, depth, norm=norm, rope=rope, **MIXERS[kind]).eval()


def _left_padded(x, pad):
    """Batch element 1 gets ``pad`` padding tokens in front; positions count real tokens only."""
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    mask[1, :pad] = False
    positions = (mask.long().cumsum(1) - 1).clamp_min(0)
    return mask, positions


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("kind", list(MIXERS))
def test_cache_gives_the_full_forward_with_left_padding(kind, norm):
    model = _model(kind, norm)
    x = torch.randn(2, 11, D)
    mask, positions = _left_padded(x, 3)
    full = model(x, positions, mask, causal=True)
    cache = model.new_cache()
    outs = []
    for a, b in [(0, 5), (5, 6), (6, 9), (9, 10), (10, 11)]:  # prefill, single tokens and a chunk
        outs.append(model(x[:, a:b], positions[:, a:b], mask[:, :b], causal=True, cache=cache))
    torch.testing.assert_close(torch.cat(outs, 1)[mask], full[mask], atol=2e-5, rtol=1e-5)
    assert all(c.length == 11 for c in cache)


@pytest.mark.parametrize("kind", ["attention", "gau_softmax_plus"])
def test_cache_with_rope_tie_positions(kind):
    """Two-axis positions (n_axes, B, T) of a text + image stream, decoded token by token."""
    rot = D // 4 if kind == "attention" else 16
    model = _model(kind, rope=RotaryEmbedding(rot, n_axes=2))
    positions, _, mask = build_positions([[("text", 3), ("image", 2, 3), ("text", 2)], [("text", 4), ("image", 1, 2)]])
    x = torch.randn(2, positions.shape[-1], D)
    full = model(x, positions, mask, causal=True)
    cache = model.new_cache()
    outs = [model(x[:, :4], positions[:, :, :4], mask[:, :4], causal=True, cache=cache)]
    for t in range(4, x.shape[1]):
        outs.append(model(x[:, t:t + 1], positions[:, :, t:t + 1], mask[:, :t + 1], causal=True, cache=cache))
    torch.testing.assert_close(torch.cat(outs, 1)[mask], full[mask], atol=2e-5, rtol=1e-5)


def test_default_positions_follow_the_cache_length():
    model = _model("attention")
    x = torch.randn(1, 7, D)
    full = model(x, causal=True)
    cache = model.new_cache()
    model(x[:, :4], causal=True, cache=cache)
    torch.testing.assert_close(model(x[:, 4:], causal=True, cache=cache), full[:, 4:], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", list(MIXERS))
def test_causal_output_ignores_later_tokens(kind):
    model = _model(kind)
    x = torch.randn(2, 9, D)
    y = x.clone()
    y[:, 5:] = torch.randn(2, 4, D)
    torch.testing.assert_close(model(x, causal=True)[:, :5], model(y, causal=True)[:, :5])
    assert not torch.allclose(model(x)[:, :5], model(y)[:, :5])  # bidirectional does see them


@pytest.mark.parametrize("kind", list(MIXERS))
def test_right_padding_does_not_change_real_tokens(kind):
    model = _model(kind)
    x = torch.randn(1, 6, D)
    padded = torch.cat([x, torch.randn(1, 3, D)], 1)
    mask = torch.tensor([[True] * 6 + [False] * 3])
    torch.testing.assert_close(model(padded, key_padding_mask=mask)[:, :6], model(x), atol=2e-5, rtol=1e-5)


def test_block_alone_and_stack_final_norm():
    block = TransformerBlock(D, heads=4, norm="post").eval()
    y = block(torch.randn(2, 5, D) * 10)
    torch.testing.assert_close(y.square().mean(-1), torch.ones(2, 5), atol=1e-4, rtol=0)  # ends with RMSNorm (gain 1)
    pre = Transformer(D, 2, heads=4).eval()
    assert pre(torch.randn(2, 5, D) * 10).square().mean(-1).sub(1).abs().max() < 1e-4
    assert isinstance(Transformer(D, 2, heads=4, norm="post").norm, torch.nn.Identity)


def test_one_rotary_embedding_is_shared():
    model = Transformer(D, 3, heads=4)
    assert model.rope.dim == D // 4 and all(b.mixer.rope is model.rope for b in model.blocks)
    assert Transformer(D, 2, mixer="gau", qk_dim=16).rope.dim == 16
    assert all(b.mixer.rope is None for b in Transformer(D, 2, heads=4, rope=False).blocks)


def test_deepnet_constants_follow_the_table():
    assert deepnet_constants(8, "post", "adam") == (8 ** 0.5, 8 ** -0.5)
    assert deepnet_constants(8, "post", "sgd") == (8 ** 0.25, 8 ** -0.25)
    assert deepnet_constants(8, "post", "lamb") == (1.0, 8 ** -0.5)
    assert deepnet_constants(8, "pre", "adam") == (1.0, 1 / 8)
    with pytest.raises(ValueError, match="deepnet='adamw'"):
        deepnet_constants(8, "post", "adamw")


def _update_ratio(depth, deepnet):
    torch.manual_seed(0)
    model = Transformer(48, depth, heads=4, norm="post", deepnet=deepnet).eval()
    x = torch.randn(2, 16, 48)
    x = x / x.square().mean(-1, keepdim=True).sqrt()
    ratios = []
    with torch.no_grad():
        for block in model.blocks:
            y = block(x)
            ratios.append(((y - x).square().mean() / x.square().mean()).sqrt().item())
            x = y
    return sum(ratios) / len(ratios)


@pytest.mark.parametrize("family", ["adam", "lamb"])
def test_deepnet_branch_starts_small_and_shrinks_with_depth(family):
    """At init a Post-Norm block moves x by about lambda^2 / alpha (DeepNet, Wang et al. 2022)."""
    ratios = {}
    for depth in (3, 12):
        alpha, lam = deepnet_constants(2 * depth, "post", family)
        ratios[depth] = _update_ratio(depth, family)
        assert 0.1 * lam ** 2 / alpha < ratios[depth] < 2 * lam ** 2 / alpha
    assert ratios[12] < ratios[3] < _update_ratio(3, False)


def test_bf16_autocast_and_gradients():
    model = Transformer(D, 2, heads=4)
    x = torch.randn(2, 6, D)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x, causal=True)
    y.float().square().mean().backward()
    assert torch.isfinite(y.float()).all() and all(p.grad is not None for p in model.parameters())


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="mixer='mamba'"):
        Transformer(D, 2, mixer="mamba")
    with pytest.raises(ValueError, match="norm='sandwich'"):
        TransformerBlock(D, norm="sandwich")
    with pytest.raises(TypeError, match="do not fit mixer='attention'"):
        TransformerBlock(D, heads=4, qk_dim=16)
    with pytest.raises(ValueError, match="depth=0"):
        Transformer(D, 0)
    model = Transformer(D, 2, heads=4)
    with pytest.raises(ValueError, match="cache has 1 entries"):
        model(torch.randn(1, 3, D), cache=[KVCache()])
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(3, D))
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        model(torch.randn(1, 3, D), key_padding_mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="rope must be"):
        Transformer(D, 2, rope=32)
    assert math.isclose(TransformerBlock(D, deepnet_alpha=2.0).alpha, 2.0)


def test_deep_post_norm_stack_trains_without_warmup_under_tiger():
    """DeepNet: 48 Post-Norm blocks with the LAMB/Tiger DeepNet constants, full lr from step 0."""
    from genlab.optim import Tiger, param_groups

    torch.manual_seed(0)
    model = torch.nn.Sequential(Transformer(32, 48, heads=4, norm="post", deepnet="lamb"), torch.nn.Linear(32, 1))
    opt = Tiger(param_groups(model, 0.01), lr=2e-3)
    x = torch.randn(16, 8, 32)
    target = x[..., :4].sum(-1, keepdim=True).cumsum(1) / 4  # needs attention over earlier tokens
    losses = []
    for _ in range(25):
        loss = (model[1](model[0](x, causal=True)) - target).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and sum(losses[-3:]) / 3 < 0.5 * losses[0]


def test_readme_snippet_runs_and_the_cache_matches():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = readme.split("## Transformer blocks, RoPE")[1].split("```python")[1].split("```")[0]
    ns: dict = {}
    exec(code, ns)
    assert ns["y"].shape == (1, 13, 256)
    torch.testing.assert_close(ns["y1"], ns["y"][:, 12:], atol=2e-5, rtol=1e-5)
