"""FSQ forward+backward throughput: genlab vs vector-quantize-pytorch on the same inputs."""

from __future__ import annotations

import torch

from genlab.tokenizers import FSQ
from scripts.benchmarks.timing import interleaved_times

SIZES = [(16, 1024), (64, 4096), (256, 4096)]  # (batch, tokens)


def run(args) -> list[dict]:
    from vector_quantize_pytorch import FSQ as PeerFSQ

    device = torch.device(args.device)
    rows = []
    for levels in ([8, 5, 5, 5], [8, 8, 8, 6, 5]):
        ours, peer = FSQ(levels).to(device), PeerFSQ(levels).to(device)
        for batch, tokens in SIZES[: 2 if args.quick else None]:
            z = torch.randn(batch, tokens, len(levels), device=device, requires_grad=True)

            def step(q):
                return lambda: q(z)[0].sum().backward()

            t = interleaved_times({"genlab": step(ours), "peer": step(peer)}, device)
            n = batch * tokens
            rows.append({
                "case": f"FSQ {levels} fwd+bwd, {batch}x{tokens} vectors",
                "genlab": f"{n / t['genlab'] / 1e6:.1f} M vec/s",
                "peer": f"{n / t['peer'] / 1e6:.1f} M vec/s (vector-quantize-pytorch)",
                "speedup": t["peer"] / t["genlab"],
            })
    return rows
