"""Measure genlab against its peers side by side, in one process, on the same inputs.

    python scripts/bench.py                          # every topic, printed as Markdown tables
    python scripts/bench.py --only fsq               # one topic
    python scripts/bench.py --quick                  # fewer sizes (a smoke run)
    python scripts/bench.py --device cuda --out t.md # on a GPU, the tables also written to a file
    python scripts/bench.py --dry-run                # import every topic and check the arguments only

Each topic lives in ``scripts/benchmarks/<topic>.py`` and returns rows; ``speedup`` is the
peer's time divided by genlab's (above 1: genlab is faster). A topic with other columns (the
cost-against-size table) names them in ``COLUMNS``. BENCHMARKS.md records the tables with the
machine they ran on. On CUDA every time comes from CUDA events after a synchronisation and peak
memory from ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOPICS = ["fsq", "vq", "rope", "attention", "optim", "flows", "gans", "lm", "harness", "llama", "compile", "scaling"]
DEFAULT_COLUMNS = ["case", "genlab", "peer", "speedup"]


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU used"
    try:
        load = "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "load unknown"
    return (f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{load}")


def cell(value) -> str:
    return f"{value:.2f}x" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(TOPICS), help=f"comma-separated topics from {TOPICS}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer sizes")
    parser.add_argument("--out", default="", help="also write the tables to this file")
    parser.add_argument("--dry-run", action="store_true", help="import the topics and check the arguments; measure nothing")
    args = parser.parse_args(argv)
    topics = [t for t in args.only.split(",") if t]
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown:
        parser.error(f"unknown topics {unknown}; expected some of {TOPICS}")
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        parser.error(f"--device {args.device!r}: {e}")
    modules = {t: importlib.import_module(f"scripts.benchmarks.{t}") for t in topics}
    if args.dry_run:
        for t, m in modules.items():
            if not callable(getattr(m, "run", None)):
                raise SystemExit(f"scripts/benchmarks/{t}.py has no run(args)")
        print(f"dry run: {len(modules)} topics import ({', '.join(topics)}), device {device}, nothing measured")
        return
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")

    out = open(args.out, "w") if args.out else None

    def emit(line: str = "") -> None:
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    torch.manual_seed(0)
    emit(f"machine: {machine(device)}")
    for topic, module in modules.items():
        columns = getattr(module, "COLUMNS", DEFAULT_COLUMNS)
        emit(f"\n### {topic}\n")
        emit("| " + " | ".join(columns) + " |")
        emit("|" + "---|" * len(columns))
        for row in module.run(args):
            emit("| " + " | ".join(cell(row[c]) for c in columns) + " |")
        try:
            emit(f"\n(load average after {topic}: " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + ")")
        except OSError:
            pass
    if out:
        out.close()


if __name__ == "__main__":
    main()
