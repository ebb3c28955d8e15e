"""Reflow and distillation of a trained flow (Liu, Gong, Liu 2022, Sec. 2.2-2.3).

    # 1. couplings: pairs (z0, z1 = ODE(z0)) of the teacher's EMA flow, sharded and resumable
    python scripts/reflow.py couplings --run runs/toy2d_1rf --num_pairs 100000 --solver rk4:32
    accelerate launch --multi_gpu --num_processes 2 scripts/reflow.py couplings --run runs/toy2d_1rf   # shards split

    # 2. 2-rectified flow: fine-tune the teacher on its fixed pairs (the train_flow.py loop)
    python scripts/reflow.py reflow --run runs/toy2d_1rf --couplings runs/toy2d_1rf/couplings --name toy2d_2rf

    # 3. distillation to k Euler steps: train only at t in {0, 1/k, ..., (k-1)/k} on the same pairs
    python scripts/reflow.py distill --run runs/toy2d_2rf --couplings runs/toy2d_1rf/couplings --k 1 --name toy2d_2rf_d1

    python scripts/reflow.py couplings --help                       # every option of a command

``couplings`` writes ``<out>/couplings.json`` (solver, steps, tolerances, guidance, seed, teacher
weights and their sha256) and ``pairs_*.safetensors`` shards; rerunning the same command after a
kill finishes the missing shards, and other settings in the same folder are refused. ``reflow``
and ``distill`` run the loop of ``train_flow.py`` (``genlab.train.flow.train_flow``) from the teacher's ``config.yaml`` and EMA weights with
``--couplings``; any other ``--key value`` is a train_flow.py key (e.g. ``--max_steps``,
``--config configs/flows/toy2d_reflow.yaml``), so the run folder, checkpoints, ``--resume`` and
evaluation are those of train_flow.py.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from genlab.flows import generate_couplings
from genlab.flows.evaluate import parse_solver
from genlab.flows.networks import load_velocity_net
from genlab.train import parse_config
from genlab.train.config import _parse_argv, format_help, load_yaml
from genlab.train.flow import FlowTrainConfig, train_flow
from genlab.io import sha256_file


@dataclass
class CouplingsConfig:
    """``reflow.py couplings``: pairs (z0, z1 = ODE(z0)) of a trained flow."""

    run: str = ""  # the teacher: a train_flow.py run folder (required)
    weights: str = "ema"  # the teacher's ema or raw weights
    out: str = ""  # coupling folder; empty = <run>/couplings
    num_pairs: int = 100_000  # pairs to generate
    shard_size: int = 10_000  # pairs per safetensors shard (the unit of resumption)
    batch_size: int = 1000  # pairs integrated together
    solver: str = "rk4:32"  # 'method:steps' (euler, midpoint, heun, rk4) or 'dopri5'
    rtol: float = 1e-5  # dopri5 relative tolerance
    atol: float = 1e-5  # dopri5 absolute tolerance
    guidance_scale: float = 1.0  # classifier-free guidance of class-conditional teachers (1 = none)
    seed: int = 0  # seeds the source noise (and labels) of every shard

    def validate(self) -> None:
        if not self.run:
            raise ValueError("reflow.py couplings needs --run (a train_flow.py run folder)")
        if self.weights not in ("ema", "raw"):
            raise ValueError(f"--weights {self.weights!r} is not supported; expected 'ema' or 'raw'")
        parse_solver(self.solver)


@dataclass
class ReflowConfig:
    """``reflow.py reflow``: fine-tune a flow on fixed couplings; other keys are train_flow.py's."""

    run: str = ""  # the flow to start from: a train_flow.py run folder (required)
    couplings: str = ""  # a coupling folder from `reflow.py couplings` (required)
    name: str = ""  # name of the new run (required)
    weights: str = "ema"  # start from the ema or raw weights of --run

    def validate(self) -> None:
        for key in ("run", "couplings", "name"):
            if not getattr(self, key):
                raise ValueError(f"reflow.py needs --{key}; see --help")
        if self.weights not in ("ema", "raw"):
            raise ValueError(f"--weights {self.weights!r} is not supported; expected 'ema' or 'raw'")


@dataclass
class DistillConfig(ReflowConfig):
    """``reflow.py distill``: train only at t in {0, 1/k, ..., (k-1)/k}; other keys are train_flow.py's."""

    k: int = 1  # Euler steps of the distilled sampler

    def validate(self) -> None:
        super().validate()
        if self.k < 1:
            raise ValueError(f"--k {self.k} must be >= 1")


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

    args = parse_config(CouplingsConfig, argv, doc=CouplingsConfig.__doc__, prog="reflow.py couplings")
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
                                 world_size=state.num_processes, metadata=meta, progress=state.is_main_process)
    state.wait_for_everyone()
    summary.update(folder=str(out), seconds=round(time.time() - t0, 1), processes=state.num_processes)
    if state.is_main_process:
        print(json.dumps(summary))
    return summary


def retrain(kind: str, argv: list[str]) -> dict:
    """Split the command line into this command's keys and train_flow.py's, then run the flow loop from the
    teacher's config.yaml and weights on the couplings."""
    cls = DistillConfig if kind == "distill" else ReflowConfig
    own = {f.name for f in dataclasses.fields(cls)}
    if any(a in ("-h", "--help") for a in argv):
        parse_config(cls, ["--help"], doc=f"{cls.__doc__}\n\nAny other key is a train_flow.py key "
                     "(python scripts/train_flow.py --help), applied over the teacher's config.yaml.",
                     prog=f"reflow.py {kind}")
    files, overrides = _parse_argv(argv)
    args = parse_config(cls, [f"--{k}={v}" for k, v in overrides if k in own], prog=f"reflow.py {kind}")
    config, weights = teacher_files(args.run, args.weights)
    forwarded = ["--config", str(config), "--resume", "false", "--overwrite", "false"]
    forwarded += [a for f in files for a in ("--config", f)] + [f"--{k}={v}" for k, v in overrides if k not in own]
    forwarded += ["--name", args.name, "--couplings", args.couplings, "--init_from", str(weights)]
    if kind == "distill":
        forwarded += ["--time_distribution", "discrete", "--time_steps", str(args.k), "--eval_solvers", f"[euler:{args.k}]"]
    return train_flow(parse_config(FlowTrainConfig, forwarded))


COMMANDS = {"couplings": (couplings, CouplingsConfig), "reflow": (lambda a: retrain("reflow", a), ReflowConfig),
            "distill": (lambda a: retrain("distill", a), DistillConfig)}


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n")
        for name, (_, cls) in COMMANDS.items():
            print(format_help(cls, "", prog=f"reflow.py {name}"))
        sys.exit(0)
    if not argv or argv[0] not in COMMANDS:
        sys.exit(f"usage: reflow.py {{{'|'.join(COMMANDS)}}} [options]  (see --help of each)\n\n{__doc__}")
    return COMMANDS[argv[0]][0](argv[1:])


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:  # bad input: a clear message, not a stack trace
        sys.exit(f"reflow.py: error: {err}")
