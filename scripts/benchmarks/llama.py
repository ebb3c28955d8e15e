"""The stream LM against Hugging Face transformers' ``LlamaForCausalLM`` of the same shape.

Same width, depth, heads and vocabulary; the MLP width of the Llama model is ``2/3`` of genlab's
so both have the same parameters and FLOPs per token (SwiGLU has three matrices, genlab's GELU
MLP two). Both use PyTorch's SDPA attention, RMSNorm and rotary embeddings, untied heads and no
biases.

* **training step**: forward, next-token cross-entropy over every position (float32 logits),
  backward and an AdamW step, on the same random text batches (``B x T`` tokens, a padding mask
  of ones passed to both, as a training script does with padded batches).
* **KV-cache greedy decoding**: the same prompts (equal length, no padding), ``max_new_tokens``
  new tokens each, greedy, no stop token (transformers: ``generate(do_sample=False,
  min_new_tokens=max_new_tokens)``; genlab: :func:`genlab.lm.generate` with ``stop_at=()``,
  text only). The two models are different random networks, so their tokens differ; the work per
  token is the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.lm import LMConfig, Sampling, StreamBuilder, StreamLM, collate, generate
from scripts.benchmarks.timing import interleaved_times

SHAPES = [(256, 4, 4), (512, 8, 8)]  # (dim, depth, heads)


def llama_like(model: StreamLM):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = model.config
    hf = LlamaConfig(vocab_size=model.vocab.size, hidden_size=cfg.dim, num_hidden_layers=cfg.depth,
                     num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                     intermediate_size=round(cfg.dim * cfg.mlp_ratio * 2 / 3), max_position_embeddings=cfg.context,
                     rope_theta=cfg.rope_base, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                     pad_token_id=0, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(0)
    return LlamaForCausalLM._from_config(hf, attn_implementation="sdpa")


def text_batch(model: StreamLM, batch: int, length: int, seed: int):
    """``batch`` text streams of exactly ``length`` tokens (BOS + random lower-case bytes)."""
    g = torch.Generator().manual_seed(seed)
    builder = StreamBuilder(model.vocab, model.config.positions)
    texts = ["".join(chr(97 + int(c)) for c in torch.randint(0, 26, (length - 1,), generator=g)) for _ in range(batch)]
    return collate([builder.build([t], eos=False) for t in texts])


def train_steps(ours: StreamLM, peer, data, device: torch.device) -> dict:
    tokens, positions, mask = data.tokens.to(device), data.positions.to(device), data.padding_mask.to(device)
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, foreach=True) for k, m in (("genlab", ours), ("peer", peer))}

    def ours_step():
        logits = ours(tokens, positions, mask)
        F.cross_entropy(logits[:, :-1].float().flatten(0, 1), tokens[:, 1:].flatten()).backward()
        opts["genlab"].step()
        opts["genlab"].zero_grad(set_to_none=True)

    def peer_step():
        logits = peer(input_ids=tokens, attention_mask=mask.long(), use_cache=False).logits
        F.cross_entropy(logits[:, :-1].float().flatten(0, 1), tokens[:, 1:].flatten()).backward()
        opts["peer"].step()
        opts["peer"].zero_grad(set_to_none=True)

    return {"genlab": ours_step, "peer": peer_step}


def decode(ours: StreamLM, peer, prompts, new_tokens: int, device: torch.device) -> dict:
    ids, mask = prompts.tokens.to(device), prompts.padding_mask.long().to(device)
    greedy = Sampling(temperature=0)

    def ours_decode():
        out = generate(ours, prompts, new_tokens, greedy, stop_at=(), allow_images=False)
        assert out.shape == (ids.shape[0], new_tokens)

    @torch.no_grad()
    def peer_decode():
        out = peer.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                            min_new_tokens=new_tokens, do_sample=False, use_cache=True, pad_token_id=0)
        assert out.shape == (ids.shape[0], ids.shape[1] + new_tokens)

    return {"genlab": ours_decode, "peer": peer_decode}


def run(args):
    """Yields the rows as they are measured (training, then decoding, for each shape)."""
    import transformers

    device = torch.device(args.device)
    peer_name = f"transformers {transformers.__version__} LlamaForCausalLM"
    quick = getattr(args, "quick", False)
    for dim, depth, heads in SHAPES[: 1 if quick else None]:
        torch.manual_seed(0)
        ours = StreamLM(LMConfig(image_codebook_size=240, dim=dim, depth=depth, heads=heads, context=512)).to(device)
        peer = llama_like(ours).to(device)
        n_ours, n_peer = (sum(p.numel() for p in m.parameters()) / 1e6 for m in (ours, peer))
        shape = f"dim {dim}, depth {depth}, heads {heads}, vocab {ours.vocab.size} ({n_ours:.2f}M / {n_peer:.2f}M params)"

        b, t = (4, 128) if quick else (8, 256)
        ours.train(), peer.train()
        times = interleaved_times(train_steps(ours, peer, text_batch(ours, b, t, seed=0), device), device,
                                  warmup=2, rounds=3 if quick else 7)
        yield {"case": f"LM training step, {b}x{t} tokens, {shape}",
               "genlab": f"{b * t / times['genlab'] / 1e3:.1f} k tok/s",
               "peer": f"{b * t / times['peer'] / 1e3:.1f} k tok/s ({peer_name})",
               "speedup": times["peer"] / times["genlab"]}

        b, p, n = (4, 16, 16) if quick else (16, 32, 64)
        ours.eval(), peer.eval()
        times = interleaved_times(decode(ours, peer, text_batch(ours, b, p, seed=1), n, device), device,
                                  warmup=1, rounds=3 if quick else 7)
        yield {"case": f"LM greedy decoding with KV cache, {b} prompts x {p} tokens + {n} new, {shape}",
               "genlab": f"{b * n / times['genlab']:.0f} tok/s",
               "peer": f"{b * n / times['peer']:.0f} tok/s ({peer_name})",
               "speedup": times["peer"] / times["genlab"]}
