"""Reflow and distillation of a trained flow (Liu, Gong, Liu 2022, Sec. 2.2-2.3).

    # 1. couplings: pairs (z0, z1 = ODE(z0)) of the teacher's EMA flow, sharded and resumable
    python scripts/reflow.py couplings --run runs/toy2d_1rf --num_pairs 100000 --solver rk4:32
    accelerate launch --multi_gpu --num_processes 2 scripts/reflow.py couplings --run runs/toy2d_1rf   # shards split

    # 2. 2-rectified flow: fine-tune the teacher on its fixed pairs (train_flow.py underneath)
    python scripts/reflow.py reflow --run runs/toy2d_1rf --couplings runs/toy2d_1rf/couplings --name toy2d_2rf

    # 3. distillation to k Euler steps: train only at t in {0, 1/k, ..., (k-1)/k} on the same pairs
    python scripts/reflow.py distill --run runs/toy2d_2rf --couplings runs/toy2d_1rf/couplings --k 1 --name toy2d_2rf_d1

``couplings`` writes ``<out>/couplings.json`` (solver, steps, tolerances, guidance, seed, teacher
weights and their sha256) and ``pairs_*.safetensors`` shards; rerunning the same command after a
kill finishes the missing shards, and other settings in the same folder are refused. ``reflow``
and ``distill`` start ``train_flow.py`` from the teacher's ``config.yaml`` and EMA weights with
``--couplings``; any other ``--key value`` goes to train_flow.py (e.g. ``--max_steps``,
``--config configs/flows/toy2d_reflow.yaml``), so the run folder, checkpoints, ``--resume`` and
evaluation are those of train_flow.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlab.flows import generate_couplings  # noqa: E402
from genlab.flows.evaluate import parse_solver  # noqa: E402
from genlab.flows.networks import load_velocity_net  # noqa: E402
from genlab.train.config import load_yaml  # noqa: E402
from genlab.train.io import sha256_file  # noqa: E402


def teacher_files(run: str, weights: str = "ema") -> tuple[Path, Path]:
    """``(config.yaml, weights file)`` of a train_flow.py run folder."""
    folder = Path(run)
    config = folder / "config.yaml"
    path = folder / "weights" / ("flow_ema.safetensors" if weights == "ema" else "flow.safetensors")
    if not config.is_file() or not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not a finished train_flow.py run (needs config.yaml and {path.name} "
                                "under weights/)")
    return config, path


def couplings(argv: list[str]) -> dict:
    from accelerate import PartialState

    p = argparse.ArgumentParser(prog="reflow.py couplings", description="generate (z0, z1) pairs of a trained flow")
    p.add_argument("--run", required=True, help="the teacher: a train_flow.py run folder")
    p.add_argument("--weights", choices=["ema", "raw"], default="ema")
    p.add_argument("--out", default=None, help="coupling folder (default: <run>/couplings)")
    p.add_argument("--num_pairs", type=int, default=100_000)
    p.add_argument("--shard_size", type=int, default=10_000)
    p.add_argument("--batch_size", type=int, default=1000)
    p.add_argument("--solver", default="rk4:32", help="'method:steps' or 'dopri5'")
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--guidance_scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    method, steps = parse_solver(args.solver)
    config, weights = teacher_files(args.run, args.weights)
    state = PartialState(cpu=not torch.cuda.is_available())
    net = load_velocity_net(str(weights), state.device)
    out = Path(args.out or Path(args.run) / "couplings")
    meta = {"teacher": str(weights), "teacher_sha256": sha256_file(weights), "teacher_dataset": load_yaml(config).get("dataset")}
    t0 = time.time()
    summary = generate_couplings(net, out, args.num_pairs, net.data_shape, shard_size=args.shard_size,
                                 batch_size=args.batch_size, seed=args.seed, method=method, steps=steps,
                                 num_classes=net.num_classes, guidance_scale=args.guidance_scale, rtol=args.rtol,
                                 atol=args.atol, device=state.device, rank=state.process_index,
                                 world_size=state.num_processes, metadata=meta)
    state.wait_for_everyone()
    summary.update(folder=str(out), seconds=round(time.time() - t0, 1), processes=state.num_processes)
    if state.is_main_process:
        print(json.dumps(summary))
    return summary


def retrain(kind: str, argv: list[str]) -> dict:
    p = argparse.ArgumentParser(prog=f"reflow.py {kind}", description=f"{kind} on a coupling folder (train_flow.py)")
    p.add_argument("--run", required=True, help="the flow to start from: a train_flow.py run folder")
    p.add_argument("--couplings", required=True, help="a coupling folder from `reflow.py couplings`")
    p.add_argument("--name", required=True, help="name of the new run")
    p.add_argument("--weights", choices=["ema", "raw"], default="ema")
    if kind == "distill":
        p.add_argument("--k", type=int, default=1, help="Euler steps of the distilled sampler")
    args, rest = p.parse_known_args(argv)
    config, weights = teacher_files(args.run, args.weights)
    forwarded = ["--config", str(config), "--name", args.name, "--couplings", args.couplings, "--init_from", str(weights),
                 "--resume", "false", "--overwrite", "false"]
    if kind == "distill":
        if args.k < 1:
            p.error(f"--k {args.k} must be >= 1")
        forwarded += ["--time_distribution", "discrete", "--time_steps", str(args.k), "--eval_solvers", f"[euler:{args.k}]"]
    from scripts.train_flow import main as train_main

    return train_main(forwarded + rest)


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"couplings": couplings, "reflow": lambda a: retrain("reflow", a), "distill": lambda a: retrain("distill", a)}
    if not argv or argv[0] not in commands:
        sys.exit(f"usage: reflow.py {{{'|'.join(commands)}}} [options]  (see --help of each)\n\n{__doc__}")
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:  # bad input: a clear message, not a stack trace
        sys.exit(f"reflow.py: error: {err}")
