"""Optimizer steps on a ~50M-parameter Transformer: genlab Lion vs lion-pytorch (default and foreach
paths), Tiger and Lion vs ``torch.optim.AdamW(foreach=True)``, optimizer-state memory, and the
bandwidth each step achieves as a fraction of a plain tensor copy timed in the same rounds.

Bandwidth counts the least traffic an update needs in float32: Lion reads p, g, m and writes p, m
(5 x 4 bytes per parameter); Tiger also reads p once for its RMS (6); AdamW reads p, g, m, v and
writes p, m, v (7). A copy moves 2 x 4 bytes per element: no elementwise update can beat it.
"""

from __future__ import annotations

import torch

from genlab.nn import Transformer
from genlab.optim import Lion, Tiger, param_groups
from scripts.benchmarks.timing import interleaved_times

TRAFFIC = {"genlab Lion": 5, "genlab Lion foreach": 5, "lion-pytorch": 5, "lion-pytorch foreach": 5, "genlab Tiger": 6,
           "genlab Tiger foreach": 6, "AdamW foreach": 7, "AdamW loop": 7}


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values() if torch.is_tensor(v))


def run(args) -> list[dict]:
    from lion_pytorch import Lion as PeerLion
    from lion_pytorch.foreach import Lion as PeerForeachLion

    device = torch.device(args.device)
    torch.manual_seed(0)
    dim, depth = (256, 8) if args.quick else (512, 16)
    model = Transformer(dim, depth, heads=8).to(device)  # 12 d^2 per block: ~50M parameters at 512 x 16
    n = sum(p.numel() for p in model.parameters())
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    groups = lambda: param_groups(model, 0.01)  # noqa: E731 (each optimizer gets its own group dicts)
    opts = {  # genlab's defaults: multi-tensor kernels on accelerators, the per-tensor loop on CPU
        "genlab Lion": Lion(groups(), lr=1e-4),
        "genlab Lion foreach": Lion(groups(), lr=1e-4, foreach=True),
        "lion-pytorch": PeerLion(groups(), lr=1e-4, use_triton=False),
        "lion-pytorch foreach": PeerForeachLion(groups(), lr=1e-4),
        "genlab Tiger": Tiger(groups(), lr=1e-3),
        "genlab Tiger foreach": Tiger(groups(), lr=1e-3, foreach=True),
        "AdamW foreach": torch.optim.AdamW(groups(), lr=1e-3, foreach=True),
        "AdamW loop": torch.optim.AdamW(groups(), lr=1e-3, foreach=False),
    }
    src, dst = torch.randn(n, device=device), torch.empty(n, device=device)
    fns = {name: opt.step for name, opt in opts.items()}
    fns["copy"] = lambda: dst.copy_(src)
    tm = interleaved_times(fns, device, warmup=2, rounds=5 if args.quick else 15)
    copy_bw = 2 * 4 * n / tm["copy"]
    state = {name: _state_bytes(opt) for name, opt in opts.items()}

    def bw(name):
        return TRAFFIC[name] * 4 * n / tm[name]

    rows = []
    for name, ref in [("genlab Lion", "lion-pytorch"), ("genlab Lion", "lion-pytorch foreach"),
                      ("genlab Lion foreach", "lion-pytorch foreach"), ("genlab Lion", "AdamW foreach"),
                      ("genlab Lion", "AdamW loop"), ("genlab Tiger", "AdamW foreach"), ("genlab Tiger", "AdamW loop"),
                      ("genlab Tiger foreach", "AdamW foreach"), ("genlab Tiger", "genlab Lion")]:
        rows.append({
            "case": f"optimizer step, {n / 1e6:.1f}M params",
            "genlab": f"{name}: {tm[name] * 1e3:.0f} ms",
            "peer": f"{ref}: {tm[ref] * 1e3:.0f} ms",
            "speedup": tm[ref] / tm[name],
        })
    for name in TRAFFIC:
        rows.append({
            "case": f"achieved bandwidth / plain copy ({copy_bw / 1e9:.1f} GB/s), {n / 1e6:.1f}M params",
            "genlab": f"{name}: {bw(name) / 1e9:.1f} GB/s", "peer": "copy", "speedup": bw(name) / copy_bw,
        })
    for name in ("genlab Tiger", "genlab Lion"):
        rows.append({
            "case": f"optimizer state, {n / 1e6:.1f}M params",
            "genlab": f"{name}: {state[name] / 2**20:.0f} MiB",
            "peer": f"AdamW: {state['AdamW foreach'] / 2**20:.0f} MiB",
            "speedup": state["AdamW foreach"] / state[name],
        })
    return rows
