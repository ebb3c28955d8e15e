"""VQ forward+backward throughput and peak memory: genlab vs vector-quantize-pytorch.

Both quantizers start from the same codebook and EMA state and run a training step (nearest
code, EMA update, commitment loss, backward) on the same 4 x 1024 vectors of dimension 32.

Peak memory: on CUDA the allocator's peak above the memory held before the step; on CPU (Linux)
the peak resident memory the step adds (``timing.rss_peak``), each measured in a fresh process
started with ``MALLOC_MMAP_THRESHOLD_=65536`` so freed tensors return to the system at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from genlab.tokenizers import VectorQuantizer
from scripts.benchmarks.timing import interleaved_times, peak_memory, rss_peak

ROOT = Path(__file__).resolve().parents[2]
BATCH, TOKENS, DIM = 4, 1024, 32
CODEBOOK_SIZES = [1024, 16384]


def build(contender: str, codebook_size: int, rotation: bool, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    codebook = torch.randn(codebook_size, DIM)
    if contender == "genlab":
        vq = VectorQuantizer(DIM, codebook_size, rotation_trick=rotation)
        buffers = {"codebook": vq.codebook, "embed_avg": vq.embed_avg}
    else:
        from vector_quantize_pytorch import VectorQuantize

        vq = VectorQuantize(DIM, codebook_size, decay=0.99, commitment_weight=0.25, rotation_trick=rotation,
                            sync_codebook=False)
        buffers = {"embed": vq._codebook.embed[0], "embed_avg": vq._codebook.embed_avg[0]}
    with torch.no_grad():
        for b in buffers.values():
            b.copy_(codebook)  # cluster sizes start at 1 in both, so embed_avg = codebook
    return vq.to(device).train()


def training_step(vq: torch.nn.Module, z: torch.Tensor):
    def step():
        quantized, _, loss = vq(z)
        (quantized.square().mean() + loss).backward()
    return step


def inputs(device: torch.device) -> torch.Tensor:
    return torch.randn(BATCH, TOKENS, DIM, generator=torch.Generator().manual_seed(1)).to(device).requires_grad_()


def measure_memory(contender: str, codebook_size: int, rotation: bool, device: torch.device) -> int | None:
    """Peak bytes of one training step after a warm-up step, in a fresh process (see the module docstring)."""
    if device.type == "cuda":
        step = training_step(build(contender, codebook_size, rotation, device), inputs(device))
        step()
        return peak_memory(step, device)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "scripts.benchmarks.vq", contender, str(codebook_size), str(int(rotation))]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return None if out[-1] == "None" else int(out[-1])


def run(args) -> list[dict]:
    device = torch.device(args.device)
    z = inputs(device)
    rows = []
    for codebook_size in CODEBOOK_SIZES[: 1 if args.quick else None]:
        for rotation in (False, True):
            steps = {c: training_step(build(c, codebook_size, rotation, device), z) for c in ("genlab", "peer")}
            t = interleaved_times(steps, device, warmup=2, rounds=15 if codebook_size <= 4096 else 7)
            mem = {c: measure_memory(c, codebook_size, rotation, device) for c in ("genlab", "peer")}
            n = BATCH * TOKENS

            def cell(c: str) -> str:
                peak = f", peak {mem[c] / 2**20:.0f} MiB" if mem[c] is not None else ""
                rate = n / t[c]
                return (f"{rate / 1e6:.2f} M vec/s" if rate >= 1e6 else f"{rate / 1e3:.1f} k vec/s") + peak

            rows.append({
                "case": f"VQ {codebook_size} codes, dim {DIM}, {'rotation trick' if rotation else 'straight-through'}, "
                        f"fwd+bwd+EMA, {BATCH}x{TOKENS} vectors",
                "genlab": cell("genlab"),
                "peer": cell("peer") + " (vector-quantize-pytorch)",
                "speedup": t["peer"] / t["genlab"],
            })
    return rows


if __name__ == "__main__":  # one memory measurement: python -m scripts.benchmarks.vq CONTENDER CODEBOOK_SIZE ROTATION
    contender, codebook_size, rotation = sys.argv[1], int(sys.argv[2]), bool(int(sys.argv[3]))
    cpu = torch.device("cpu")
    step = training_step(build(contender, codebook_size, rotation, cpu), inputs(cpu))
    step()  # warm-up: lazily created state and autograd buffers are not the step's peak
    print(rss_peak(step))
