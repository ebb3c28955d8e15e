"""StreamLM: the cache gives the logits of a full forward pass, positions act relatively, padding
does not leak, and bad input fails clearly."""

import pytest
import torch

from genlab.lm.model import LMConfig, StreamLM, next_token_loss
from genlab.lm.stream import ImageTokens, StreamBuilder, collate
from genlab.train import save_weights

GRID = (2, 3)


def tiny(mixer="attention", positions="rope_tie", **kw):
    torch.manual_seed(0)
    cfg = LMConfig(image_codebook_size=12, image_grid=list(GRID), positions=positions, context=48, dim=32, depth=2,
                   heads=2, mixer=mixer, qk_dim=16, **kw)
    return StreamLM(cfg).eval()


def mixed_batch(model):
    b = StreamBuilder(model.vocab, model.config.positions)
    img = lambda k: ImageTokens((torch.arange(6) + k) % 12, *GRID)  # noqa: E731
    return collate([b.build(["hi", img(0), "yo"]), b.build(["a longer caption", img(5)]), b.build(["text only"])])


@pytest.mark.parametrize("mixer", ["attention", "gau"])
@pytest.mark.parametrize("positions", ["rope_tie", "flatten1d"])
def test_cache_gives_the_logits_of_a_full_forward(mixer, positions):
    model = tiny(mixer, positions)
    batch = mixed_batch(model)
    with torch.no_grad():
        full = model(batch.tokens, batch.positions, batch.padding_mask)
        cache, outs, t = model.new_cache(), [], 0
        for n in (5, 1, 1, 3, 1, batch.tokens.shape[1] - 11):  # a prefill, then steps and chunks
            outs.append(model(batch.tokens[:, t:t + n], batch.positions[:, :, t:t + n], batch.padding_mask[:, :t + n], cache))
            t += n
    inc = torch.cat(outs, 1)
    mask = batch.padding_mask
    torch.testing.assert_close(inc[mask], full[mask], atol=1e-5, rtol=1e-5)


def test_padding_never_changes_a_sequence():
    model = tiny()
    batch = mixed_batch(model)
    with torch.no_grad():
        together = model(batch.tokens, batch.positions, batch.padding_mask)
        for i, n in enumerate(batch.lengths.tolist()):
            alone = model(batch.tokens[i:i + 1, :n], batch.positions[:, i:i + 1, :n])
            torch.testing.assert_close(together[i, :n], alone[0], atol=1e-5, rtol=1e-5)


def test_shifting_every_position_leaves_the_logits_unchanged():
    model = tiny()
    batch = mixed_batch(model)
    with torch.no_grad():
        a = model(batch.tokens, batch.positions, batch.padding_mask)
        b = model(batch.tokens, batch.positions + torch.tensor([37.0, 37.0])[:, None, None], batch.padding_mask)
    torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-4)


def test_positions_matter():
    """The same tokens at RoPE-Tie and at flattened positions give different logits after an image."""
    tie, flat = tiny(positions="rope_tie"), tiny(positions="flatten1d")
    bt, bf = mixed_batch(tie), mixed_batch(flat)
    assert torch.equal(bt.tokens, bf.tokens)
    with torch.no_grad():
        lt, lf = tie(bt.tokens, bt.positions, bt.padding_mask), flat(bf.tokens, bf.positions, bf.padding_mask)
    torch.testing.assert_close(lt[:, :4], lf[:, :4])  # up to the first image the positions agree
    assert not torch.allclose(lt[0, 6:], lf[0, 6:])


def test_loss_counts_only_the_chosen_targets():
    model = tiny()
    batch = mixed_batch(model)
    logits = model(batch.tokens, batch.positions, batch.padding_mask)
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), batch.tokens[:, 1:], reduction="none")
    image = (batch.kinds[:, 1:] == 1) & batch.padding_mask[:, 1:]
    torch.testing.assert_close(next_token_loss(logits, batch, "image"), ce[image].mean())
    torch.testing.assert_close(model.loss(batch, "all"), ce[batch.padding_mask[:, 1:]].mean())
    with pytest.raises(ValueError, match="no 'image' targets"):
        model.loss(collate([StreamBuilder(model.vocab).build(["text"])]), "image")


def test_bf16_autocast_on_cpu_keeps_the_loss_in_float32():
    model = tiny().train()
    batch = mixed_batch(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(batch.tokens, batch.positions, batch.padding_mask)
        loss = next_token_loss(logits, batch)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_input_raises_clearly():
    model = tiny()
    batch = mixed_batch(model)
    bad = batch.tokens.clone()
    bad[0, 0] = model.vocab.size
    with pytest.raises(ValueError, match=r"tokens must be ids in \[0, 273\)"):
        model(bad, batch.positions)
    with pytest.raises(ValueError, match="the stream has 49 tokens; this model's context is 48"):
        model(torch.zeros(1, 49, dtype=torch.long), torch.zeros(2, 1, 49))
    with pytest.raises(ValueError, match=r"positions must be \(2, B, T\)"):
        model(batch.tokens, batch.positions[0])
    with pytest.raises(ValueError, match="mixer='moe' is not supported"):
        StreamLM(LMConfig(mixer="moe"))
    with pytest.raises(ValueError, match="dim=30 must split into heads=4 heads of even size"):
        StreamLM(LMConfig(dim=30, heads=4))


def test_weights_round_trip_and_refuse_another_model(tmp_path):
    from genlab.lm.model import lm_config_dict
    from genlab.tokenizers import TokenizerConfig, build_tokenizer

    model = tiny()
    path = tmp_path / "lm.safetensors"
    save_weights(model, path, "StreamLM", lm_config_dict(model.config))
    loaded = StreamLM.from_pretrained(str(path))
    assert loaded.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    other = tmp_path / "tok.safetensors"
    save_weights(build_tokenizer(TokenizerConfig(channels=8)), other, "ImageTokenizer", {})
    with pytest.raises(ValueError, match="holds a 'ImageTokenizer', not a 'StreamLM'"):
        StreamLM.from_pretrained(str(other))
