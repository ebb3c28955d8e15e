"""Sampling: the grammar of streams (exactly h x w image ids, then END_IMAGE), stopping, the cache
against a full forward pass, guidance, and top-k / top-p filtering."""

import pytest
import torch

from genlab.lm.generate import Sampling, complete_text, filter_logits, generate, sample_logits, text_to_image
from genlab.lm.model import LMConfig, StreamLM
from genlab.lm.stream import ImageTokens, StreamBuilder, collate
from genlab.lm.text import ByteTokenizer as T

GRID = (2, 3)


def tiny(context=48):
    torch.manual_seed(0)
    return StreamLM(LMConfig(image_codebook_size=12, image_grid=list(GRID), context=context, dim=32, depth=2, heads=2)).eval()


def biased(model, favourite: list[int]):
    """Make the head ignore the input and rank ``favourite`` ids first, in that order."""
    head = torch.nn.Linear(model.config.dim, model.vocab.size)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    with torch.no_grad():
        for rank, token in enumerate(favourite):
            head.bias[token] = 10.0 - rank
    model.head = head
    return model


def test_text_to_image_gives_exactly_one_grid_that_matches_a_full_forward():
    model = tiny()
    prompts = ["a handwritten seven", "two"]
    ids = text_to_image(model, prompts, Sampling(temperature=0))
    assert ids.shape == (2, *GRID) and ids.min() >= 0 and ids.max() < 12
    # Greedy decoding with the cache picks the argmax (over image ids) of a full forward pass.
    b = StreamBuilder(model.vocab)
    full = collate([b.build([p, ImageTokens.from_grid(g)]) for p, g in zip(prompts, ids)])
    with torch.no_grad():
        logits = model(full.tokens, full.positions, full.padding_mask)
    for i, p in enumerate(prompts):
        start = len(b.build([p], eos=False, begin_image=True).tokens)  # first image token
        image_logits = logits[i, start - 1:start - 1 + 6, model.vocab.image_offset:]
        assert torch.equal(image_logits.argmax(-1), ids[i].flatten())


def test_generation_stops_at_eos_and_pads_after():
    model = biased(tiny(), [T.EOS])
    batch = collate([StreamBuilder(model.vocab).build(["hi"], eos=False)])
    out = generate(model, batch, 5, Sampling(temperature=0))
    assert out.tolist() == [[T.EOS] + [T.PAD] * 4]


def test_an_opened_image_holds_exactly_h_times_w_ids_then_end_image():
    image_id = 261 + 4
    model = biased(tiny(), [T.BEGIN_IMAGE, image_id, T.EOS])
    batch = collate([StreamBuilder(model.vocab).build(["hi"], eos=False)])
    out = generate(model, batch, 12, Sampling(temperature=0), stop_at=(T.END_IMAGE,))
    assert out.tolist() == [[T.BEGIN_IMAGE] + [image_id] * 6 + [T.END_IMAGE] + [T.PAD] * 4]
    # Without a stop at END_IMAGE the text goes on (and here opens the next image).
    out = generate(model, batch, 9, Sampling(temperature=0))
    assert out[0, 7:].tolist() == [T.END_IMAGE, T.BEGIN_IMAGE]


def test_text_completion_never_opens_an_image_and_stops_at_the_budget():
    model = biased(tiny(), [T.BEGIN_IMAGE, 261, T.END_IMAGE, ord("z")])
    assert complete_text(model, ["ab"], 6, Sampling(temperature=0)) == ["zzzzzz"]


def test_sampling_is_reproducible_and_respects_top_k():
    model = tiny()
    a = text_to_image(model, ["x"] * 4, Sampling(top_k=2), generator=torch.Generator().manual_seed(3))
    b = text_to_image(model, ["x"] * 4, Sampling(top_k=2), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_guidance_one_is_the_plain_model_and_guidance_needs_unconditional_prompts():
    model = tiny()
    b = StreamBuilder(model.vocab)
    cond = collate([b.build(["seven"], eos=False, begin_image=True)])
    uncond = collate([b.build([], eos=False, begin_image=True)])
    plain = generate(model, cond, 7, Sampling(temperature=0))
    assert torch.equal(generate(model, cond, 7, Sampling(temperature=0, guidance=1.0), uncond), plain)
    with pytest.raises(ValueError, match="guidance=3.0 needs `unconditional` prompts"):
        generate(model, cond, 7, Sampling(guidance=3.0))
    # guidance 0 samples the unconditional model
    assert torch.equal(generate(model, cond, 7, Sampling(temperature=0, guidance=0.0), uncond),
                       generate(model, uncond, 7, Sampling(temperature=0)))


def test_a_prompt_longer_than_the_context_raises():
    model = tiny(context=20)
    with pytest.raises(ValueError, match=r"needs 30 > the model's context 20"):
        text_to_image(model, ["a" * 21])
    with pytest.raises(ValueError, match="temperature=-1"):
        text_to_image(model, ["a"], Sampling(temperature=-1))
    with pytest.raises(TypeError, match="prompts must be a non-empty list"):
        text_to_image(model, "a handwritten seven")


def nucleus_by_definition(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the most probable ids, one at a time, until their mass reaches p."""
    out = torch.full_like(logits, float("-inf"))
    for r, row in enumerate(logits):
        probs, mass = row.softmax(-1), 0.0
        for i in row.argsort(descending=True).tolist():
            out[r, i] = row[i]
            mass += probs[i].item()
            if mass >= p:
                break
    return out


def test_top_p_and_top_k_match_their_definitions():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_p=0.75)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.85)).tolist() == [[False, False, False, True]]
    assert torch.isinf(filter_logits(logits, top_k=1)).tolist() == [[False, True, True, True]]
    g = torch.Generator().manual_seed(0)
    random = torch.randn(16, 50, generator=g) * 2
    for p in (0.1, 0.5, 0.9):
        assert torch.equal(filter_logits(random, top_p=p), nucleus_by_definition(random, p))
    kept = ~torch.isinf(filter_logits(random, top_k=7))
    assert kept.sum(1).eq(7).all() and torch.equal(kept, random >= random.topk(7).values[:, -1:])
    draws = sample_logits(random[:1].expand(2000, -1), Sampling(top_k=3), torch.Generator().manual_seed(1))
    assert set(draws.tolist()) <= set(random[0].topk(3).indices.tolist())


def test_tiny_temperatures_tend_to_greedy_and_overflowing_logits_raise():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=g) * 30 - 80  # log-probabilities far below 0
    logits[:, 7] = float("-inf")
    for t in (1e-45, 1e-30, 1e-6):
        assert torch.equal(sample_logits(logits, Sampling(temperature=t), g), logits.argmax(-1))
    with pytest.raises(ValueError, match="NaN or \\+Inf.*guidance=1e\\+38"):
        sample_logits(torch.tensor([[0.0, float("inf")]]), Sampling(guidance=1e38), g)
    with pytest.raises(ValueError, match="allows no token"):
        sample_logits(torch.full((1, 3), float("-inf")), Sampling(), g)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"temperature": float("inf")}, ValueError, "temperature=inf must be finite"),
    ({"temperature": "1.0"}, TypeError, "temperature='1.0' must be a number"),
    ({"guidance": float("inf")}, ValueError, "guidance=inf must be finite"),
    ({"top_p": float("nan")}, ValueError, "top_p=nan must be finite"),
    ({"top_k": 2.0}, ValueError, "top_k=2.0 must be an integer"),
])
def test_sampling_settings_are_checked_when_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        Sampling(**kwargs)
