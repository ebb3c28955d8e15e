"""Measure genlab against its peers side by side, in one process, on the same inputs.

    python scripts/bench.py                 # every topic, printed as a Markdown table
    python scripts/bench.py --only fsq      # one topic
    python scripts/bench.py --quick         # fewer sizes (a smoke run)

Each topic lives in ``scripts/benchmarks/<topic>.py`` and returns rows; ``speedup`` is the
peer's time divided by genlab's (above 1: genlab is faster). BENCHMARKS.md records the table
with the machine it ran on.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOPICS = ["fsq", "vq", "rope", "attention", "optim", "flows", "gans", "lm", "harness"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(TOPICS), help=f"comma-separated topics from {TOPICS}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer sizes")
    args = parser.parse_args()
    topics = [t for t in args.only.split(",") if t]
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown:
        parser.error(f"unknown topics {unknown}; expected some of {TOPICS}")

    torch.manual_seed(0)
    print(f"machine: {machine()}\n")
    print("| case | genlab | peer | speedup |")
    print("|---|---|---|---|")
    for topic in topics:
        for row in importlib.import_module(f"scripts.benchmarks.{topic}").run(args):
            print(f"| {row['case']} | {row['genlab']} | {row['peer']} | {row['speedup']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
