"""ODE sampling throughput: genlab's native fixed-step loops vs torchdiffeq's ``odeint`` on the same
grid and the same velocity network (Euler, midpoint, RK4; torchdiffeq's ``rk4`` is the 3/8 rule,
also 4 evaluations per step). Both sample under ``torch.no_grad``; outputs agree (Euler, midpoint
exactly up to float rounding)."""

from __future__ import annotations

import torch

from genlab.flows import sample
from genlab.flows.networks import FlowNetConfig, build_velocity_net
from scripts.benchmarks.timing import interleaved_times

CASES = [  # (label, net config, data shape, batch, steps)
    ("toy2d MLP 128x3", FlowNetConfig(net="mlp", width=128, depth=3), (2,), 16, 32),  # solver overhead shows
    ("toy2d MLP 128x3", FlowNetConfig(net="mlp", width=128, depth=3), (2,), 2000, 32),
    ("digits U-Net 32/64", FlowNetConfig(net="unet", width=32, channel_mult=[1, 2], attention_levels=[1]), (1, 8, 8), 256, 8),
]


def run(args) -> list[dict]:
    from torchdiffeq import odeint

    device = torch.device(args.device)
    rows = []
    for label, cfg, shape, batch, steps in CASES[: 1 if args.quick else None]:
        net = build_velocity_net(cfg, shape).to(device).eval()
        x0 = torch.randn(batch, *shape, device=device)
        grid = torch.linspace(0, 1, steps + 1, device=device)

        def func(t, x):
            return net(x, t.expand(x.shape[0]))

        for method in ("euler", "midpoint", "rk4"):
            @torch.no_grad()
            def ours():
                return sample(net, x0, steps, method)

            @torch.no_grad()
            def peer():
                return odeint(func, x0, grid, method=method)

            t = interleaved_times({"genlab": ours, "peer": peer}, device, rounds=7)
            rows.append({
                "case": f"{label}, {method}, {steps} steps, batch {batch}",
                "genlab": f"{batch / t['genlab']:.0f} samples/s",
                "peer": f"{batch / t['peer']:.0f} samples/s (torchdiffeq odeint)",
                "speedup": t["peer"] / t["genlab"],
            })
    return rows
