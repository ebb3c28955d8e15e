"""Train FSQ and VQ tokenizers on the same data and budget and tabulate their test-set quality.

    python scripts/compare_tokenizers.py                             # the README table (9 runs)
    python scripts/compare_tokenizers.py --jobs 2 --max_steps 1600   # two runs at a time
    python scripts/compare_tokenizers.py --sizes 2^10 --max_steps 50 --output_dir runs/compare_smoke

At codebook sizes around 2^8, 2^10 and 2^12 it trains, with ``train_fsq.py`` / ``train_vqvae.py``
and their defaults otherwise (photos, 32x32 crops, 8x8 tokens, batch 32, the same encoder and
decoder): FSQ with the level sets of the FSQ paper's Table 1 ([8,6,5], [8,5,5,5], [7,5,5,5,5]);
VQ with 2^8 / 2^10 / 2^12 codes (EMA, k-means init, dead-code reset); and the same VQ without
dead-code reset, which shows codebook collapse. Unknown arguments go to every training run.

Each run lives in ``<output_dir>/<name>/``; a finished run (with results.json) is reused, an
interrupted one resumes from its checkpoint. Then one training step of every model is timed
side by side in one process (``--time_rounds`` interleaved rounds, so the machine's load hits all
alike). Writes ``<output_dir>/table.md`` (test PSNR, SSIM, codebook usage and perplexity over the
whole photo test split, milliseconds per training step), ``<output_dir>/results.json`` and
``<output_dir>/comparison.png`` (PSNR and usage against codes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from genlab.train import parse_config, save_figure
from genlab.train.config import _parse_argv

ROOT = Path(__file__).resolve().parents[1]

SIZES = {"2^8": ([8, 6, 5], 256), "2^10": ([8, 5, 5, 5], 1024), "2^12": ([7, 5, 5, 5, 5], 4096)}
VARIANTS = {  # name -> (script, label, extra arguments given the size)
    "fsq": ("train_fsq.py", "FSQ {levels}", lambda levels, k: ["--levels", json.dumps(levels)]),
    "vq": ("train_vqvae.py", "VQ, dead-code reset", lambda levels, k: ["--quantizer_options", f"{{codebook_size: {k}}}"]),
    "vq_no_reset": ("train_vqvae.py", "VQ, no reset",
                    lambda levels, k: ["--quantizer_options", f"{{codebook_size: {k}, dead_code_threshold: 0}}"]),
}


@dataclass
class CompareTokenizersConfig:
    """The comparison's own keys; any other ``--key value`` goes to every training run."""

    output_dir: str = "runs/compare"  # where the runs, table.md, results.json and comparison.png go
    sizes: str = ",".join(SIZES)  # comma-separated subset of 2^8, 2^10, 2^12
    variants: str = ",".join(VARIANTS)  # comma-separated subset of fsq, vq, vq_no_reset
    jobs: int = 1  # runs at a time (each gets --cpu_threads 1 when > 1)
    time_rounds: int = 10  # interleaved rounds timing a training step of each model

    def validate(self) -> None:
        for given, known, flag in ((self.sizes, SIZES, "--sizes"), (self.variants, VARIANTS, "--variants")):
            unknown = sorted(set(given.split(",")) - set(known))
            if unknown:
                raise ValueError(f"{flag}: unknown {unknown}; expected some of {list(known)}")
        if self.jobs < 1 or self.time_rounds < 1:
            raise ValueError(f"--jobs={self.jobs} and --time_rounds={self.time_rounds} must be >= 1")


def run_one(name: str, script: str, args: list[str], out: Path) -> dict:
    folder = out / name
    if (folder / "results.json").exists():
        return json.loads((folder / "results.json").read_text())
    cmd = [sys.executable, str(ROOT / "scripts" / script), *args, "--name", name, "--output_dir", str(out)]
    if folder.exists():
        cmd.append("--resume")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    tqdm.write("running: " + " ".join(cmd))
    with open(out / f"{name}.log", "a") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}); see {out / f'{name}.log'}")
    return json.loads((folder / "results.json").read_text())


def step_times(names: list[str], scripts: list[str], out: Path, rounds: int) -> dict[str, float]:
    """Seconds per training step of each finished run's model, timed side by side in this process.

    Every model (rebuilt from its run's config.yaml) trains on the same batch of its configured
    size; ``interleaved_times`` alternates the models each round, so the machine's load hits all
    of them alike (the runs' own wall times depend on what else ran at the time).
    """
    import torch

    from genlab.data import build_image_dataset
    from genlab.tokenizers import build_tokenizer
    from genlab.train import build_optimizer, load_config_file
    from genlab.train.timing import interleaved_times
    from genlab.train.tokenizer import TokenizerTrainConfig, VQVAETrainConfig

    steps = {}
    for name, script in zip(names, scripts):
        cfg = load_config_file(VQVAETrainConfig if script == "train_vqvae.py" else TokenizerTrainConfig,
                               out / name / "config.yaml")
        data = build_image_dataset(cfg.dataset, "train", cfg.image_size, root=cfg.data_root)
        images = torch.stack([data[i][0] for i in range(cfg.batch_size)])
        torch.manual_seed(cfg.seed)
        model = build_tokenizer(cfg).train()
        optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)

        def step(model=model, optimizer=optimizer, images=images):
            model(images).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps[name] = step
    return interleaved_times(steps, torch.device("cpu"), warmup=2, rounds=rounds)


def table(rows: list[dict]) -> str:
    lines = ["| size | tokenizer | codes | test PSNR (dB) | SSIM | usage | perplexity | ms/step |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['label']} | {r['codebook_size']} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                     f"{100 * r['usage']:.1f} % | {r['perplexity']:.0f} | {1000 * r['step_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Test PSNR and codebook usage against the number of codes, one line per tokenizer variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["codebook_size"])
        label = {"fsq": "FSQ"}.get(variant, mine[0]["label"])
        ks = [r["codebook_size"] for r in mine]
        axes[0].plot(ks, [r["psnr"] for r in mine], "o-", label=label)
        axes[1].plot(ks, [100 * r["usage"] for r in mine], "o-", label=label)
    for ax, ylabel in zip(axes, ("test PSNR (dB)", "codebook usage (%)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("codes")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else list(argv)
    own = set(CompareTokenizersConfig.__dataclass_fields__)
    files, overrides = _parse_argv([a for a in argv if a not in ("-h", "--help")])
    args = parse_config(CompareTokenizersConfig, [*(a for a in argv if a in ("-h", "--help")),
                                                  *(f"--{k}={v}" for k, v in overrides if k in own)],
                        doc=__doc__, prog="compare_tokenizers.py")
    passthrough = [a for f in files for a in ("--config", f)] + [a for k, v in overrides if k not in own for a in (f"--{k}", v)]
    sizes, variants = args.sizes.split(","), args.variants.split(",")
    fixed = sorted({k for k, _ in overrides} & {"levels", "quantizer_options", "name"})
    if fixed:
        raise ValueError(f"{fixed} are set by the comparison itself; use --sizes, --variants and --output_dir")
    if args.jobs > 1 and "--cpu_threads" not in passthrough:
        passthrough += ["--cpu_threads", "1"]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    plan = []
    for size in sizes:
        levels, k = SIZES[size]
        for variant in variants:
            script, label, extra = VARIANTS[variant]
            plan.append((size, variant, label.format(levels=levels), script, extra(levels, k) + passthrough))
    names = [f"{variant}_{size.replace('^', '')}" for size, variant, _, _, _ in plan]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_one, name, script, run_args, out) for name, (_, _, _, script, run_args) in zip(names, plan)]
        results = [f.result() for f in tqdm(futures, desc="runs", unit="run", dynamic_ncols=True)]
    times = step_times(names, [p[3] for p in plan], out, args.time_rounds)

    rows = [{"size": size, "variant": variant, "label": label, **res, "step_seconds": times[name]}
            for name, (size, variant, label, _, _), res in zip(names, plan, results)]
    text = table(rows)
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    plot(rows, out / "comparison.png")
    print(text)
    return rows


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:  # bad input: a clear message, not a stack trace
        sys.exit(f"compare_tokenizers.py: error: {err}")
