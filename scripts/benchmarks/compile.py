"""``--compile`` (``torch.compile``, inductor) against eager PyTorch on the same steps.

* train_fsq's default training step (conv FSQ tokenizer, 32 px, 32 channels, batch 32, AdamW):
  the model compiled as ``Run`` does through Accelerate (``dynamo_backend="inductor"``), the
  optimizer step eager in both.
* FSQ forward + backward alone (the "fused path" try): the module compiled with its finiteness
  check off (the check is a data-dependent branch) against genlab's eager fast path with the check.

``genlab`` is the compiled step, ``peer`` the eager one; the compile time (first calls) is given
apart and is not in the rates.
"""

from __future__ import annotations

import time

import torch

from genlab.tokenizers import FSQ, build_tokenizer
from scripts.benchmarks.timing import interleaved_times, sync
from genlab.train.tokenizer import TokenizerTrainConfig


def tokenizer_steps(device: torch.device, batch: int):
    cfg = TokenizerTrainConfig()
    cfg.validate()
    x = torch.rand(batch, cfg.image_channels, cfg.image_size, cfg.image_size, device=device) * 2 - 1
    steps = {}
    for name in ("compiled", "eager"):
        torch.manual_seed(0)
        model = build_tokenizer(cfg).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=True)
        fwd = torch.compile(model) if name == "compiled" else model

        def step(fwd=fwd, model=model, opt=opt):
            fwd(x).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        steps[name] = step
    return steps, f"train_fsq default step ({cfg.image_size} px, {cfg.channels} channels, batch {batch})", batch, "images/s"


def fsq_steps(device: torch.device, batch: int, tokens: int = 4096):
    z = torch.randn(batch, tokens, 4, device=device, requires_grad=True)
    compiled = torch.compile(FSQ([8, 5, 5, 5], check_finite=False).to(device))
    eager = FSQ([8, 5, 5, 5]).to(device)
    steps = {"compiled": lambda: compiled(z)[0].sum().backward(), "eager": lambda: eager(z)[0].sum().backward()}
    return steps, f"FSQ [8, 5, 5, 5] fwd+bwd, {batch}x{tokens} vectors", batch * tokens / 1e6, "M vec/s"


def run(args) -> list[dict]:
    device = torch.device(args.device)
    rows = []
    for build, batch in ((tokenizer_steps, 32), (fsq_steps, 64)):
        steps, case, units, unit = build(device, batch)
        t0 = time.perf_counter()
        steps["compiled"]()
        steps["compiled"]()  # compiles forward, then backward
        sync(device)
        compile_s = time.perf_counter() - t0
        t = interleaved_times({"genlab": steps["compiled"], "peer": steps["eager"]}, device, warmup=2,
                              rounds=3 if args.quick else 9)
        rows.append({"case": case,
                     "genlab": f"{units / t['genlab']:.1f} {unit} (torch.compile, {compile_s:.0f} s to compile)",
                     "peer": f"{units / t['peer']:.1f} {unit} (eager)",
                     "speedup": t["peer"] / t["genlab"]})
    return rows
