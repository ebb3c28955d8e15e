"""Two GAU layers vs one attention + MLP block (about the same parameters, FLASH §2), causal
forward+backward at several sequence lengths. The "peer" column is genlab's attention block."""

from __future__ import annotations

import torch

from genlab.nn import TransformerBlock
from scripts.benchmarks.timing import interleaved_times

LENGTHS = [128, 512, 1024, 2048]


def run(args) -> list[dict]:
    device = torch.device(args.device)
    dim, batch = 256, 4
    attn = TransformerBlock(dim, heads=4).to(device)  # 12 d^2 parameters
    gau = torch.nn.Sequential(*[TransformerBlock(dim, mixer="gau", qk_dim=128) for _ in range(2)]).to(device)  # 2 x (6 d^2 + ...)
    n_attn, n_gau = (sum(p.numel() for p in m.parameters()) for m in (attn, gau))
    rows = []
    for t in LENGTHS[: 2 if args.quick else None]:
        x = torch.randn(batch, t, dim, device=device)
        fns = {"genlab": lambda: _gau_causal(gau, x).sum().backward(), "peer": lambda: attn(x, causal=True).sum().backward()}
        tm = interleaved_times(fns, device, rounds=7)
        rows.append({
            "case": f"causal fwd+bwd, {batch}x{t} tokens, d={dim}",
            "genlab": f"2 GAU layers ({n_gau / 1e6:.2f}M params): {batch * t / tm['genlab'] / 1e3:.1f} k tok/s",
            "peer": f"attention+MLP, 4 heads ({n_attn / 1e6:.2f}M params): {batch * t / tm['peer'] / 1e3:.1f} k tok/s",
            "speedup": tm["peer"] / tm["genlab"],
        })
    return rows


def _gau_causal(layers, x):
    for layer in layers:
        x = layer(x, causal=True)
    return x
