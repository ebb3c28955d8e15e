"""Cost against size: step time and peak memory of the image tokenizer and the stream LM.

* **image tokenizer**: ``train_fsq.py``'s default model (conv backbone, 32 channels, FSQ
  ``[8, 5, 5, 5]``), one training step (forward, loss, backward, AdamW) on a fixed batch of
  ``TOKENIZER_BATCH`` images from 32 to 256 px.
* **stream LM** (dim 256, depth 4, 4 heads), ``LM_BATCH`` sequences of ``T`` tokens, ``T`` from
  128 to 2048: a training step (forward, cross-entropy, backward, AdamW); the next token without a
  cache (one forward pass over all ``T`` tokens, which is what decoding without a cache pays per
  token); the next token with the KV cache (one token against ``T`` cached keys and values).

Each point runs in a fresh process (started with ``MALLOC_MMAP_THRESHOLD_=65536`` on CPU, see
``timing.rss_peak``): the median of a few steps after a warm-up, then the peak memory one step
adds (CUDA: ``torch.cuda.max_memory_allocated`` above what is held before it). The exponent is
the slope of a least-squares line through ``log(cost)`` against ``log(size)``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from scripts.benchmarks.timing import median_time, peak_memory, rss_peak

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["series", "size", "step time", "peak memory"]
TOKENIZER_BATCH, LM_BATCH = 4, 4
SERIES = {  # name: sizes
    "image tokenizer training step (px)": [32, 64, 128, 256],
    "stream LM training step (tokens)": [128, 256, 512, 1024, 2048],
    "stream LM next token, no cache (tokens)": [128, 256, 512, 1024, 2048],
    "stream LM next token, KV cache (tokens)": [128, 256, 512, 1024, 2048],
}
PLOT = ROOT / "docs" / "cost_vs_size.png"


def build_step(series: str, size: int, device: torch.device):
    """A zero-argument function running one step of ``series`` at ``size``."""
    torch.manual_seed(0)
    if series.startswith("image"):
        from genlab.train.tokenizer import TokenizerTrainConfig
        from genlab.tokenizers import build_tokenizer

        cfg = TokenizerTrainConfig(image_size=size)
        cfg.validate()
        model = build_tokenizer(cfg).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
        x = torch.rand(TOKENIZER_BATCH, cfg.image_channels, size, size, device=device) * 2 - 1

        def step():
            model(x).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    from genlab.lm import LMConfig, StreamLM

    model = StreamLM(LMConfig(image_codebook_size=240, dim=256, depth=4, heads=4, context=max(SERIES[series]) + 1))
    model = model.to(device)
    tokens = torch.randint(0, 256, (LM_BATCH, size), device=device)
    positions = torch.arange(size, device=device).expand(2, LM_BATCH, size).float()  # text: the diagonal
    mask = torch.ones(LM_BATCH, size, dtype=torch.bool, device=device)
    if "training" in series:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)

        def step():
            logits = model(tokens, positions, mask)
            F.cross_entropy(logits[:, :-1].float().flatten(0, 1), tokens[:, 1:].flatten()).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step
    model.eval()
    if "no cache" in series:
        return torch.no_grad()(lambda: model(tokens, positions, mask)[:, -1].argmax(-1))
    with torch.no_grad():
        cache = model.new_cache()
        model(tokens[:, :-1], positions[:, :, :-1], mask[:, :-1], cache)
        model(tokens[:, -1:], positions[:, :, -1:], mask, cache)  # the cache now lives in its growing buffers
    full = [(c.k[..., :-1, :], c.v[..., :-1, :]) for c in cache]  # views of the first T - 1 entries

    @torch.no_grad()
    def step():
        for c, (k, v) in zip(cache, full):  # back to T - 1 cached tokens, then one more (written in place)
            c.k, c.v = k, v
        return model(tokens[:, -1:], positions[:, :, -1:], mask, cache)[:, -1].argmax(-1)
    return step


def measure(series: str, size: int, device: torch.device) -> tuple[float, int | None]:
    """``(seconds per step, peak bytes)`` of one point, in a fresh process on CPU."""
    if device.type == "cuda":
        step = build_step(series, size, device)
        return median_time(step, device, warmup=2, repeats=5, min_seconds=0.2), peak_memory(step, device)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "scripts.benchmarks.scaling", series, str(size)]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return float(out[-2]), None if out[-1] == "None" else int(out[-1])


def exponent(sizes: list[float], values: list[float]) -> float:
    """Least-squares slope of ``log(values)`` against ``log(sizes)``."""
    x, y = [math.log(s) for s in sizes], [math.log(v) for v in values]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)


def plot(results: dict[str, list[tuple[int, float, int | None]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, points in results.items():
        sizes = [p[0] for p in points]
        axes[0].loglog(sizes, [p[1] * 1e3 for p in points], "o-", label=name)
        if all(p[2] for p in points):
            axes[1].loglog(sizes, [p[2] / 2**20 for p in points], "o-", label=name)
    axes[0].set(xlabel="size (px or tokens)", ylabel="ms per step", title="step time")
    axes[1].set(xlabel="size (px or tokens)", ylabel="MiB", title="peak memory added by one step")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def run(args) -> list[dict]:
    device = torch.device(args.device)
    rows, results = [], {}
    for series, sizes in SERIES.items():
        sizes = sizes[:2] if args.quick else sizes
        points = [(s, *measure(series, s, device)) for s in sizes]
        results[series] = points
        k_t = exponent(sizes, [p[1] for p in points])
        k_m = exponent(sizes, [p[2] for p in points]) if all(p[2] for p in points) else None
        for s, seconds, peak in points:
            rows.append({"series": series, "size": str(s), "step time": f"{seconds * 1e3:.1f} ms",
                         "peak memory": f"{peak / 2**20:.1f} MiB" if peak is not None else "n/a"})
        rows.append({"series": series, "size": "fitted exponent", "step time": f"{k_t:.2f}",
                     "peak memory": f"{k_m:.2f}" if k_m is not None else "n/a"})
    if not args.quick:
        plot(results, PLOT)
    return rows


if __name__ == "__main__":  # one point: python -m scripts.benchmarks.scaling SERIES SIZE
    series, size = sys.argv[1], int(sys.argv[2])
    cpu = torch.device("cpu")
    step = build_step(series, size, cpu)
    seconds = median_time(step, cpu, warmup=1, repeats=3, min_seconds=0.0)
    print(seconds, rss_peak(step))
