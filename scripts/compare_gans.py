"""Run every GAN objective on one protocol and write the comparison table.

    python scripts/compare_gans.py                                   # the README table (budget below)
    python scripts/compare_gans.py --jobs 2                          # two runs at a time
    python scripts/compare_gans.py --objectives wgan_gp,reflow --seeds 0 --toy_steps 300 --digits_steps 0 --out runs/quick

**2-D protocol** (Unrolled GAN / VEEGAN / PacGAN, ``genlab.metrics.toy2d``): 25 gaussians on the grid ``{-4,-2,0,2,4}²`` with
σ = 0.05; for every objective and seed the same MLPs (3 hidden layers of ``--toy_width``, latent 2,
ReLU), Adam(``--lr``, β = (0.5, 0.9)), batch ``--toy_batch``, ``--n_critic`` critic updates per generator
update and ``--toy_steps`` generator updates; then 2,500 samples from fixed latents. A sample is high
quality within 3σ of its nearest mode; a mode is covered if it is the nearest mode of one high-quality
sample; sliced Wasserstein against a fresh reference sample (its noise floor beside it). The table
reports the median over seeds and every seed's modes/high-quality pair.

**digits**: 16 x 16 digits, DCGAN-style networks (``--digits_width``), ``--digits_steps`` generator
updates, 719 samples scored by FD-digits-cnn (the shipped digits classifier's features; never FID)
against 719 real train digits, with the real-vs-real noise floor, precision and recall.

Each run is ``scripts/train_gan.py`` in a subprocess with ``--cpu_threads 1``; finished runs (with a
``results.json``) are reused, so an interrupted comparison continues where it stopped. Writes
``<out>/comparison.md``, ``<out>/comparison.json`` and ``<out>/toy_samples.png`` (seed 0 of every
objective) and ``<out>/digits_grids.png``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genlab.data import Toy2D
from genlab.gans import OBJECTIVES
from genlab.train import parse_config, save_figure, save_grid
from genlab.train.generators import load_generator
from genlab.train.generators import sample_generator as sample
from genlab.io import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]

TARGET = {"objectives": ["wgan_gp", "reflow"], "modes": 20, "high_quality": 0.70}  # the acceptance bar
# every objective with its default settings, plus the generator variants of the ReFlow critic and f-GAN
DEFAULT_ENTRIES = [*OBJECTIVES, "reflow:generator_loss=proximal", "wgan_gp:generator_loss=proximal", "fgan_gan:g_mode=saddle"]


@dataclass
class CompareGANsConfig:
    """The objectives, seeds and budget of the comparison (see the protocol above)."""

    out: str = "runs/compare_gans"  # output folder (runs/, logs/, comparison.md, comparison.json, figures)
    objectives: str = ";".join(DEFAULT_ENTRIES)  # semicolon-separated objective[:key=value,...] (extra train_gan.py settings)
    seeds: str = "0,1,2"  # comma-separated seeds of the 2-D runs (digits use the first)
    toy_steps: int = 3000  # generator updates of each 2-D run
    toy_width: int = 128  # hidden width of the 2-D MLPs
    toy_batch: int = 128  # batch size of the 2-D runs
    toy_samples: int = 2500  # samples per evaluation (the protocol: 2500)
    digits_steps: int = 1000  # generator updates of each digits run; 0 skips digits
    digits_width: int = 16  # DCGAN width of the digits networks
    n_critic: int = 2  # critic updates per generator update
    lr: float = 2e-4  # Adam learning rate of both networks, decayed linearly to 0
    jobs: int = 1  # runs at a time

    def validate(self) -> None:
        for entry in self.objectives.split(";"):
            if entry:
                parse_entry(entry)
        if not [s for s in self.seeds.split(",") if s]:
            raise ValueError("--seeds needs at least one seed")
        if self.jobs < 1:
            raise ValueError(f"--jobs={self.jobs} must be >= 1")


def parse_entry(entry: str) -> tuple[str, list[str]]:
    """``objective[:key=value,...]`` -> (objective, extra train_gan.py arguments)."""
    objective, _, rest = entry.partition(":")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r} in {entry!r}; expected one of {OBJECTIVES}")
    extra = []
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"cannot parse {item!r} in {entry!r}; expected key=value")
        extra += [f"--{key}", value]
    return objective, extra


def run_name(kind: str, entry: str, seed: int) -> str:
    return f"{kind}_{entry.replace(':', '_').replace('=', '').replace(',', '_')}_s{seed}"


def common_args(args, entry: str, seed: int) -> list[str]:
    objective, extra = parse_entry(entry)
    return ["--objective", objective, "--seed", str(seed), "--lr", str(args.lr), "--betas", "[0.5, 0.9]",
            "--schedule", "linear", "--n_critic", str(args.n_critic), "--eval_every", "0", "--ckpt_every", "0",
            "--log_every", "100", *extra]


def toy_args(args, entry: str, seed: int) -> list[str]:
    return ["--dataset", "25gaussians", "--arch", "mlp", "--width", str(args.toy_width), "--depth", "3",
            "--activation", "relu", "--latent_dim", "2", "--batch_size", str(args.toy_batch),
            "--max_steps", str(args.toy_steps), "--eval_samples", str(args.toy_samples),
            *common_args(args, entry, seed), "--name", run_name("toy", entry, seed)]


def digits_args(args, entry: str, seed: int) -> list[str]:
    return ["--dataset", "digits", "--image_size", "8", "--arch", "dcgan", "--width", str(args.digits_width),
            "--latent_dim", "32", "--batch_size", "64", "--max_steps", str(args.digits_steps), "--eval_samples", "719",
            *common_args(args, entry, seed), "--name", run_name("digits", entry, seed)]


def run_one(argv: list[str], out: Path) -> dict:
    """One train_gan.py run (reused if its results.json exists); a failed run is reported, not fatal."""
    name = argv[argv.index("--name") + 1]
    folder = out / "runs" / name
    results = folder / "results.json"
    if results.exists():
        return json.loads(results.read_text())
    cmd = [sys.executable, str(ROOT / "scripts" / "train_gan.py"), *argv, "--output_dir", str(out / "runs"),
           "--cpu_threads", "1", "--overwrite"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "logs" / f"{name}.log").write_text(proc.stdout[-20000:] + "\n" + proc.stderr[-20000:])
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        tqdm.write(f"  {name}: FAILED after {time.time() - t0:.0f}s: {last}")
        return {"failed": last}
    tqdm.write(f"  {name}: done in {time.time() - t0:.0f}s")
    return json.loads(results.read_text())


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def toy_table(results: dict[str, list[dict]]) -> tuple[str, dict]:
    lines = ["| objective | modes (of 25), median | high-quality, median | sliced W2, median | per seed: modes / HQ | meets bar |",
             "|---|---|---|---|---|---|"]
    summary = {}
    for objective, runs in results.items():
        ok = [r for r in runs if "failed" not in r]
        modes = [r["modes_covered"] for r in ok]
        hq = [r["high_quality"] for r in ok]
        swd = [r["swd"] for r in ok]
        failed = len(runs) - len(ok)
        summary[objective] = {"modes": _median(modes), "high_quality": _median(hq), "swd": _median(swd),
                              "per_seed": [[m, h] for m, h in zip(modes, hq)], "failed_runs": failed}
        per_seed = ", ".join(f"{m} / {h:.0%}" for m, h in zip(modes, hq))
        if failed:
            per_seed = f"{per_seed}, {failed} diverged" if per_seed else "all diverged"
        bar = ""
        if objective.partition(":")[0] in TARGET["objectives"]:
            met = len(ok) == len(runs) and _median(modes) >= TARGET["modes"] and _median(hq) >= TARGET["high_quality"]
            bar = "yes" if met else "**no**"
        m = f"{_median(modes):g}" if ok else "—"
        h = f"{_median(hq):.1%}" if ok else "—"
        s = f"{_median(swd):.3f}" if ok else "—"
        lines.append(f"| `{objective}` | {m} | {h} | {s} | {per_seed} | {bar} |")
    return "\n".join(lines), summary


def digits_table(results: dict[str, list[dict]]) -> tuple[str, dict]:
    lines = ["| objective | FD-digits-cnn | noise floor | precision | recall |", "|---|---|---|---|---|"]
    summary = {}
    for objective, runs in results.items():
        r = runs[0]
        if "failed" in r:
            lines.append(f"| `{objective}` | diverged | | | |")
            summary[objective] = {"failed": r["failed"]}
            continue
        summary[objective] = {k: r[k] for k in ("fd_digits_cnn", "noise_floor", "precision", "recall")}
        lines.append(f"| `{objective}` | {r['fd_digits_cnn']:.2f} | {r['noise_floor']:.2f} | {r['precision']:.2f} | {r['recall']:.2f} |")
    return "\n".join(lines), summary


def toy_figure(out: Path, entries: list[str], seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 6
    rows = -(-len(entries) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.1 * rows), dpi=72, squeeze=False)
    reference = Toy2D("25gaussians", 2500, seed=777).points
    for ax, entry in zip(axes.flat, entries):
        weights = out / "runs" / run_name("toy", entry, seed) / "weights" / "generator.safetensors"
        ax.scatter(reference[:, 0], reference[:, 1], s=1, c="0.8")
        if weights.exists():
            generator, config = load_generator(weights)
            x = sample(generator, 2500, config["latent_dim"], seed=0)
            ax.scatter(x[:, 0], x[:, 1], s=1, c="tab:blue", alpha=0.5)
        ax.set(xlim=(-5.5, 5.5), ylim=(-5.5, 5.5), xticks=[], yticks=[], aspect="equal")
        ax.set_title(entry.replace(":", "\n"), fontsize=7)
    for ax in list(axes.flat)[len(entries):]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, out / "toy_samples.png")


def digits_figure(out: Path, entries: list[str], seed: int) -> None:
    """16 samples per objective, one row each, in the order of ``entries``."""
    rows = []
    for entry in entries:
        weights = out / "runs" / run_name("digits", entry, seed) / "weights" / "generator.safetensors"
        if weights.exists():
            generator, config = load_generator(weights)
            rows.append(sample(generator, 16, config["latent_dim"], seed=0))
    if rows:
        save_grid(torch.cat(rows), out / "digits_grids.png", nrow=16, padding=1, scale=3)


def main(argv: list[str] | None = None) -> dict:
    args = parse_config(CompareGANsConfig, argv, doc=__doc__, prog="compare_gans.py")
    entries = [e for e in args.objectives.split(";") if e]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    jobs = [("toy", e, toy_args(args, e, s)) for e in entries for s in seeds]
    if args.digits_steps > 0:
        jobs += [("digits", e, digits_args(args, e, seeds[0])) for e in entries]
    print(f"{len(jobs)} runs into {out}", flush=True)
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        finished = list(tqdm(pool.map(lambda job: run_one(job[2], out), jobs), total=len(jobs), desc="runs", unit="run",
                             dynamic_ncols=True))
    toy: dict[str, list[dict]] = {e: [] for e in entries}
    digits: dict[str, list[dict]] = {}
    for (kind, entry, _), result in zip(jobs, finished):
        (toy[entry] if kind == "toy" else digits.setdefault(entry, [])).append(result)

    toy_md, toy_summary = toy_table(toy)
    floor = next((r["swd_noise_floor"] for runs in toy.values() for r in runs if "swd_noise_floor" in r), float("nan"))
    protocol = (f"25 gaussians, seeds {seeds}, {args.toy_steps} generator steps x {args.n_critic} critic steps, "
                f"ReLU MLPs of width {args.toy_width} (3 hidden layers, latent 2), Adam lr {args.lr} betas (0.5, 0.9) "
                f"decayed linearly to 0, batch {args.toy_batch}, {args.toy_samples} samples; sliced-W2 noise floor {floor:.3f}")
    report = [f"### 25 gaussians\n\n{protocol}\n\n{toy_md}"]
    summary = {"toy": toy_summary, "toy_protocol": protocol, "args": dataclasses.asdict(args)}
    toy_figure(out, entries, seeds[0])
    if digits:
        digits_md, digits_summary = digits_table(digits)
        dprot = (f"digits 8x8 (scored at 16x16), seed {seeds[0]}, {args.digits_steps} generator steps x {args.n_critic} "
                 f"critic steps, DCGAN width {args.digits_width}, latent 32, batch 64, the same Adam; 719 samples vs "
                 "719 real train digits")
        report.append(f"### digits\n\n{dprot}\n\n{digits_md}")
        summary.update({"digits": digits_summary, "digits_protocol": dprot})
        digits_figure(out, entries, seeds[0])
    summary["seconds"] = round(time.time() - t0)
    text = "\n\n".join(report) + "\n"
    write_text_atomic(out / "comparison.md", text)
    write_text_atomic(out / "comparison.json", json.dumps(summary, indent=1))
    print(text)
    return summary


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:  # bad input: a clear message, not a stack trace
        sys.exit(f"compare_gans.py: error: {err}")
