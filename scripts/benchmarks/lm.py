"""Text-to-image decoding of the stream LM: the KV cache against recomputing the whole prefix each step.

Both routes decode greedily from the same prompts with the same positions (a PositionCounter per
sequence) and must pick the same image tokens; the table gives images per second.
"""

from __future__ import annotations

import torch

from genlab.lm import LMConfig, PositionCounter, Sampling, StreamBuilder, StreamLM, collate, text_to_image
from genlab.lm.captions import prompt_for
from scripts.benchmarks.timing import interleaved_times


@torch.no_grad()
def decode_without_cache(model: StreamLM, prompts: list[str]) -> torch.Tensor:
    """Greedy image tokens ``(B, h, w)``: a full forward pass over the prefix for every new token."""
    device = next(model.parameters()).device
    batch = collate([StreamBuilder(model.vocab, model.config.positions).build([p], eos=False, begin_image=True)
                     for p in prompts]).to(device)
    counter = PositionCounter(model.vocab, batch.next_pos, batch.open_image, model.grid, model.config.positions)
    tokens, positions, mask = batch.tokens, batch.positions, batch.padding_mask
    last = batch.lengths - 1
    rows = torch.arange(len(prompts), device=device)
    h, w = model.grid
    out = []
    for step in range(h * w):
        logits = model(tokens, positions, mask)[rows, last][:, model.vocab.image_offset:]
        token = logits.argmax(-1) + model.vocab.image_offset
        out.append(token)
        pos = counter.advance(token)
        tokens = torch.cat([tokens, token[:, None]], 1)
        positions = torch.cat([positions, pos[:, :, None]], 2)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        last = torch.full_like(last, tokens.shape[1] - 1)
    return model.vocab.tokens_to_image(torch.stack(out, 1)).view(-1, h, w)


def run(args) -> list[dict]:
    device = torch.device(args.device)
    rows = []
    for dim, depth in ([128, 4], [256, 8])[: 1 if args.quick else None]:
        torch.manual_seed(0)
        model = StreamLM(LMConfig(image_codebook_size=240, dim=dim, depth=depth, heads=4)).to(device).eval()
        prompts = [prompt_for(i % 10) for i in range(64)]
        greedy = Sampling(temperature=0)
        cached = text_to_image(model, prompts, greedy)
        assert torch.equal(cached, decode_without_cache(model, prompts)), "the two routes disagree"
        t = interleaved_times({"genlab": lambda: text_to_image(model, prompts, greedy),
                               "peer": lambda: decode_without_cache(model, prompts)}, device, rounds=5)
        rows.append({
            "case": f"text-to-image, 64 prompts, 4x4 tokens, dim {dim} depth {depth}",
            "genlab": f"{64 / t['genlab']:.0f} images/s (KV cache)",
            "peer": f"{64 / t['peer']:.0f} images/s (full forward per token)",
            "speedup": t["peer"] / t["genlab"],
        })
    return rows
