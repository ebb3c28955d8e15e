"""Gradient-penalty critic step (forward, double backward, Adam): genlab vs the reference pattern.

genlab's :class:`~genlab.gans.GradientPenaltyLoss` runs the critic on ``[real, fake]`` and on the
interpolates, checks the scores, and forms the penalty from a float32 squared norm with an eps in the
square root; the reference is the pattern of the WGAN-GP authors' code and its PyTorch ports (three
critic forwards, ``gradients.norm(2, dim=1)``), written here on the same networks and inputs. Both are timed on the 2-D MLP and the 16 x 16 DCGAN critic of
``scripts/compare_gans.py``.
"""

from __future__ import annotations

import torch

from genlab.gans import NetworkConfig, build_critic, wgan_gp
from scripts.benchmarks.timing import interleaved_times

CASES = [("mlp", [2], 128, 256), ("dcgan", [1, 16, 16], 32, 64)]  # (arch, data shape, width, batch)


def reference_step(critic, real, fake, lam=10.0):
    """Three critic forwards and a norm, as in the WGAN-GP reference implementations."""
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    d_hat = critic(x_hat)
    grad = torch.autograd.grad(d_hat.sum(), x_hat, create_graph=True)[0]
    penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return critic(fake).mean() - critic(real).mean() + lam * penalty


def run(args) -> list[dict]:
    device = torch.device(args.device)
    objective = wgan_gp()
    rows = []
    for arch, shape, width, batch in CASES[: 1 if args.quick else None]:
        critic = build_critic(NetworkConfig(arch=arch, data_shape=shape, width=width)).to(device)
        opt = torch.optim.Adam(critic.parameters(), 1e-4, betas=(0.0, 0.9))
        real, fake = torch.randn(batch, *shape, device=device), torch.randn(batch, *shape, device=device)

        def step(loss_fn):
            def fn():
                loss = loss_fn()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return fn

        t = interleaved_times({"genlab": step(lambda: objective.d_loss(critic, real, fake)[0]),
                               "peer": step(lambda: reference_step(critic, real, fake))}, device)
        rows.append({
            "case": f"WGAN-GP critic step, {arch} {'x'.join(map(str, shape))}, width {width}, batch {batch}",
            "genlab": f"{t['genlab'] * 1e3:.1f} ms",
            "peer": f"{t['peer'] * 1e3:.1f} ms (three-forward reference)",
            "speedup": t["peer"] / t["genlab"],
        })
    return rows
