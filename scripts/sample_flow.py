"""Sample a trained flow: image grids (one per class), saved samples, scores with their protocol, NFE.

    python scripts/sample_flow.py --run runs/flow_digits                          # heun:10, EMA weights
    python scripts/sample_flow.py --run runs/flow_digits --solver euler:4 --guidance_scale 2
    python scripts/sample_flow.py --run runs/flow_digits --compare                # quality vs NFE, several solvers
    python scripts/sample_flow.py --run runs/toy2d_2rf --solver euler:1           # toy2d: scatter plot and SWD
    python scripts/fid.py --a runs/flow_digits                                    # re-score the saved samples

Writes into ``<run>/samples/`` (or ``--out``): ``images/<index>_<label>.png`` (the folder is
emptied of earlier PNGs first; ``scripts/fid.py`` reads it), ``grid.png`` (one row per class) and
``grid_class_<c>.png`` for class-conditional runs, ``scatter.png`` and ``samples.safetensors``
for toy2d, ``score.json`` (metric, value, protocol: samples, reference, solver, measured NFE,
tolerances, guidance scale, EMA or raw flow weights, seed, versions) and, with ``--compare``,
``quality_vs_nfe.png`` / ``.json``.

Scores: digits get FD-digits-cnn (the shipped digits classifier's feature space; never called
FID) with its noise floor and the classifier's accuracy on the intended classes; color images get
FID/KID with the Inception network when its weights file is available (never downloaded; without
it the script says so and reports the NFE only); toy2d gets the sliced Wasserstein distance with
its noise floor.
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

from genlab.flows.evaluate import (  # noqa: E402
    class_grid, integrate, noise_and_labels, parse_solver, plot_quality_vs_nfe, score_samples,
)
from genlab.flows.networks import load_velocity_net  # noqa: E402
from genlab.metrics.protocol import library_versions  # noqa: E402
from genlab.train import save_grid, save_scatter  # noqa: E402
from genlab.utils import to_uint8  # noqa: E402
from genlab.train.config import load_yaml  # noqa: E402
from genlab.train.io import atomic_path, write_text_atomic  # noqa: E402

COMPARE = ["euler:1", "euler:2", "euler:4", "euler:8", "euler:16", "euler:32", "midpoint:1", "midpoint:2", "midpoint:4",
           "midpoint:8", "midpoint:16", "heun:1", "heun:2", "heun:4", "heun:8", "heun:16", "rk4:1", "rk4:2", "rk4:4", "rk4:8",
           "dopri5"]


def save_images(samples: torch.Tensor, labels: torch.Tensor | None, folder: Path) -> None:
    """One PNG per sample, ``<index>_<label>.png`` (or ``<index>.png``), rounded to uint8."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    images = to_uint8(samples)
    for i, img in enumerate(images):
        name = f"{i:05d}_{int(labels[i])}.png" if labels is not None else f"{i:05d}.png"
        array = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        with atomic_path(folder / name) as tmp:
            Image.fromarray(array).save(tmp, format="PNG")


def score(dataset: str, samples: torch.Tensor, labels: torch.Tensor | None, cfg: dict, args, protocol: dict) -> dict:
    """The score record of one sample set (see the module docstring)."""
    if dataset == "digits":
        from genlab.metrics import digits_scores

        s = digits_scores(samples.clamp(-1, 1), labels, seed=args.seed)
        return {"metric": s.metric, "value": s.value, "protocol": {**s.protocol, **protocol}, "extra": s.extra}
    if dataset == "toy2d":
        scores = score_samples("toy2d", samples, None, cfg.get("toy2d", "8gaussians"), seed=args.seed)
        return {"metric": "sliced Wasserstein", "value": scores.pop("swd"),
                "protocol": {**protocol, "reference": f"{len(samples)} fresh samples of {cfg.get('toy2d')}",
                             "noise_floor": "two independent reference samples of the same size"}, "extra": scores}
    from genlab.data import build_image_dataset
    from genlab.metrics import inception_scores

    try:
        real_set = build_image_dataset(dataset, "train", cfg["image_size"], root=cfg.get("data_root", "data"))
        real = torch.stack([real_set[i][0] for i in range(min(len(real_set), len(samples)))])
        scores = inception_scores(real, samples.clamp(-1, 1), args.inception_weights, reference=f"{dataset}:train")
    except FileNotFoundError as err:
        print(f"FID not computed: {err}")
        return {"metric": "FID", "value": None, "protocol": protocol, "extra": {"unavailable": str(err)}}
    fid = scores["fid"]
    return {"metric": "FID", "value": fid.value, "protocol": {**fid.protocol, **protocol},
            "extra": {"kid": scores["kid"].value, **scores["kid"].extra}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a train_flow.py run folder")
    parser.add_argument("--weights", default="ema", help="'ema', 'raw', or a path to flow weights")
    parser.add_argument("--solver", default="heun:10", help="'method:steps' (euler, midpoint, heun, rk4) or 'dopri5'")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--guidance_scale", type=float, default=1.0, help="classifier-free guidance s (1 = none)")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=500)
    parser.add_argument("--per_class", type=int, default=8, help="images per class in the grids")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/samples)")
    parser.add_argument("--inception_weights", default=None, help="Inception weights file for FID on color images")
    parser.add_argument("--compare", nargs="*", default=None, help=f"solver specs for the quality-vs-NFE plot (default {COMPARE})")
    parser.add_argument("--compare_samples", type=int, default=500)
    args = parser.parse_args(argv)
    if args.num_samples < 2:
        parser.error(f"--num_samples {args.num_samples} must be >= 2")
    parse_solver(args.solver)

    run = Path(args.run)
    if not (run / "config.yaml").is_file():
        raise FileNotFoundError(f"{str(run)!r} is not a train_flow.py run folder (no config.yaml)")
    cfg = load_yaml(run / "config.yaml")
    weights = {"ema": run / "weights" / "flow_ema.safetensors", "raw": run / "weights" / "flow.safetensors"}.get(args.weights, Path(args.weights))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = load_velocity_net(str(weights), device)
    dataset, classes, null = cfg.get("dataset", "digits"), net.num_classes, net.null_label
    if args.guidance_scale != 1 and not classes:
        parser.error(f"--guidance_scale {args.guidance_scale} needs a class-conditional flow; this one is unconditional")
    out = Path(args.out or run / "samples")

    x0, labels = noise_and_labels(args.num_samples, net.data_shape, classes, args.seed)
    t0 = time.time()
    samples, nfe = integrate(net, x0, labels, args.solver, guidance_scale=args.guidance_scale, null_label=null,
                             batch_size=args.batch_size, device=device, rtol=args.rtol, atol=args.atol)
    seconds = time.time() - t0
    protocol = {"solver": args.solver, "nfe": nfe, "rtol": args.rtol, "atol": args.atol, "guidance_scale": args.guidance_scale,
                "flow_weights": args.weights, "flow_weights_file": str(weights), "seed": args.seed, "generated": len(samples),
                "sampling_seconds": round(seconds, 2), "versions": library_versions()}
    if dataset == "toy2d":
        from safetensors.torch import save_file

        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "samples.safetensors") as tmp:
            save_file({"samples": samples.contiguous()}, str(tmp), metadata={"solver": args.solver, "nfe": str(nfe)})
        save_scatter(samples, out / "scatter.png", f"{args.solver} ({nfe} NFE)")
    else:
        save_images(samples, labels, out / "images")
        if classes:
            per = min(args.per_class, args.num_samples // classes)
            save_grid(class_grid(samples, labels, classes, per), out / "grid.png", nrow=per)
            for c in range(classes):
                save_grid(samples[labels == c][:max(per, 8)], out / f"grid_class_{c}.png", nrow=8)
        else:
            save_grid(samples[:64], out / "grid.png", nrow=8)
    record = score(dataset, samples, labels, cfg, args, protocol)
    write_text_atomic(out / "score.json", json.dumps(record, indent=1))
    extra = ", ".join(f"{k} {v:.4g}" for k, v in record["extra"].items() if isinstance(v, float))
    value = f"{record['value']:.4g}" if record["value"] is not None else "n/a"
    print(f"{record['metric']} = {value} ({extra}) with {args.solver}, {nfe} NFE, guidance {args.guidance_scale}, "
          f"{args.weights} weights, {len(samples)} samples -> {out}")

    if args.compare is not None:
        record["compare"] = compare(net, cfg, dataset, args, device, out)
    return record


def compare(net, cfg: dict, dataset: str, args, device, out: Path) -> list[dict]:
    """Score several solvers on the same noise and plot quality against measured NFE."""
    specs = args.compare or COMPARE
    for spec in specs:
        parse_solver(spec)
    x0, labels = noise_and_labels(args.compare_samples, net.data_shape, net.num_classes, args.seed + 1)
    rows, curves, floor = [], {}, None
    for spec in specs:
        samples, nfe = integrate(net, x0, labels, spec, guidance_scale=args.guidance_scale, null_label=net.null_label,
                                 batch_size=args.batch_size, device=device, rtol=args.rtol, atol=args.atol)
        scores = score_samples(dataset, samples, labels, cfg.get("toy2d", "8gaussians"), seed=args.seed)
        key = "swd" if dataset == "toy2d" else "fd_digits_cnn"
        if key not in scores:
            raise ValueError(f"--compare scores toy2d and digits runs only; this run's dataset is {dataset!r}")
        floor = scores.get("swd_noise_floor", scores.get("noise_floor"))
        rows.append({"solver": spec, "nfe": nfe, **scores})
        curves.setdefault(parse_solver(spec)[0], []).append((nfe, scores[key]))
        print(f"{spec:>12}: NFE {nfe:4d}  {key} {scores[key]:.4g}" + (f"  accuracy {scores['accuracy']:.3f}" if "accuracy" in scores else ""))
    label = "sliced Wasserstein" if dataset == "toy2d" else "FD-digits-cnn"
    plot_quality_vs_nfe(curves, out / "quality_vs_nfe.png", f"{label} (lower is better)", floor)
    protocol = {"samples": args.compare_samples, "guidance_scale": args.guidance_scale, "rtol": args.rtol, "atol": args.atol,
                "flow_weights": args.weights, "seed": args.seed + 1}
    write_text_atomic(out / "quality_vs_nfe.json", json.dumps({"protocol": protocol, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:  # bad input: a clear message, not a stack trace
        sys.exit(f"sample_flow.py: error: {err}")
