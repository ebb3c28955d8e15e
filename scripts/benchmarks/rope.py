"""RoPE application (queries or keys, forward and forward+backward): genlab vs rotary-embedding-torch."""

from __future__ import annotations

import torch

from genlab.nn import RotaryEmbedding
from scripts.benchmarks.timing import interleaved_times

SIZES = [(8, 8, 256, 64), (8, 8, 1024, 64), (4, 16, 2048, 128)]  # (batch, heads, tokens, head dim)


def run(args) -> list[dict]:
    from rotary_embedding_torch import RotaryEmbedding as PeerRoPE

    device = torch.device(args.device)
    rows = []
    for b, h, t, d in SIZES[: 2 if args.quick else None]:
        ours, peer = RotaryEmbedding(d).to(device), PeerRoPE(d).to(device)
        x = torch.randn(b, h, t, d, device=device)
        xg = x.clone().requires_grad_()
        for mode, fns in [
            ("fwd", {"genlab": lambda: ours(x), "peer": lambda: peer.rotate_queries_or_keys(x)}),
            ("fwd+bwd", {"genlab": lambda: ours(xg).sum().backward(),
                         "peer": lambda: peer.rotate_queries_or_keys(xg).sum().backward()}),
        ]:
            tm = interleaved_times(fns, device)
            n = b * h * t
            rows.append({
                "case": f"RoPE-1D {mode}, {b}x{h}x{t}x{d} (B, H, T, d)",
                "genlab": f"{n / tm['genlab'] / 1e6:.1f} M vec/s",
                "peer": f"{n / tm['peer'] / 1e6:.1f} M vec/s (rotary-embedding-torch)",
                "speedup": tm["peer"] / tm["genlab"],
            })
    return rows
