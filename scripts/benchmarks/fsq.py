"""FSQ forward+backward throughput: genlab vs vector-quantize-pytorch on the same inputs, and how
far genlab is from the machine's limits.

Throughput rows: the least memory traffic a fused forward+backward needs (read ``z``, write the
codes and the int64 indices, read the incoming gradient, write the input gradient:
``16 d + 8`` bytes per vector of ``d`` float32 channels) over the measured time, against a plain
copy of a tensor of ``z``'s size (8 bytes per element) timed in the same rounds. The kernel count
is the number of ATen operations (views aside) of one forward+backward, the benchmark's
``sum().backward()`` included, that read or write a tensor as large as ``z`` (each is a pass
over memory; times ``d``, the elementwise operations per vector).
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from genlab.tokenizers import FSQ
from scripts.benchmarks.timing import interleaved_times

SIZES = [(16, 1024), (64, 4096), (256, 4096)]  # (batch, tokens)


class FullSizeOps(TorchDispatchMode):
    """Counts ATen calls (views aside) with an input or output of at least ``numel`` elements."""

    def __init__(self, numel: int):
        super().__init__()
        self.numel, self.count = numel, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        if not func.is_view and any(t.numel() >= self.numel for t in tensors):
            self.count += 1
        return out


def full_size_ops(step, z: torch.Tensor) -> int:
    with FullSizeOps(z.numel()) as mode:
        step()
    return mode.count


def run(args) -> list[dict]:
    from vector_quantize_pytorch import FSQ as PeerFSQ

    device = torch.device(args.device)
    rows, throughput = [], []
    for levels in ([8, 5, 5, 5], [8, 8, 8, 6, 5]):
        ours, peer = FSQ(levels).to(device), PeerFSQ(levels).to(device)
        d = len(levels)
        for batch, tokens in SIZES[: 2 if args.quick else None]:
            z = torch.randn(batch, tokens, d, device=device, requires_grad=True)
            copy_dst = torch.empty_like(z, requires_grad=False)

            def step(q):
                return lambda: q(z)[0].sum().backward()

            t = interleaved_times({"genlab": step(ours), "peer": step(peer),
                                   "copy": lambda: copy_dst.copy_(z.detach())}, device)
            n = batch * tokens
            rows.append({
                "case": f"FSQ {levels} fwd+bwd, {batch}x{tokens} vectors",
                "genlab": f"{n / t['genlab'] / 1e6:.1f} M vec/s",
                "peer": f"{n / t['peer'] / 1e6:.1f} M vec/s (vector-quantize-pytorch)",
                "speedup": t["peer"] / t["genlab"],
            })
            if levels == [8, 5, 5, 5]:
                ops = {k: full_size_ops(step(q), z) for k, q in (("genlab", ours), ("peer", peer))}
                gbs = (16 * d + 8) * n / t["genlab"] / 1e9
                peer_gbs = (16 * d + 8) * n / t["peer"] / 1e9
                copy_gbs = 8 * d * n / t["copy"] / 1e9
                throughput.append({
                    "case": f"achieved throughput / plain copy of z, FSQ {levels} fwd+bwd, {batch}x{tokens} vectors",
                    "genlab": f"{gbs:.2f} GB/s, {ops['genlab']} full-size kernels ({ops['genlab'] * d} elementwise ops/vector)",
                    "peer": f"copy {copy_gbs:.1f} GB/s; vector-quantize-pytorch {peer_gbs:.2f} GB/s, "
                            f"{ops['peer']} full-size kernels ({ops['peer'] * d} elementwise ops/vector)",
                    "speedup": gbs / copy_gbs,
                })
    return rows + throughput
