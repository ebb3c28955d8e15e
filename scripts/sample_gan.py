"""Sample a trained GAN generator: a grid (or a scatter plot for 2-D data), the samples as files, and a
score with its protocol.

    python scripts/sample_gan.py --run runs/gan_digits                      # 719 digits, grid, FD-digits-cnn
    python scripts/sample_gan.py --run runs/gan_25gaussians --num 2500      # scatter plot, mode coverage, SWD
    python scripts/sample_gan.py --run runs/gan_photos --metric fid --inception_weights pt_inception-2015-12-05.pth
    python scripts/fid.py --a runs/gan_digits                               # the written samples, read by fid.py

Writes into the run folder (or ``--out``): ``samples/grid.png`` and ``samples/images/<index>.png``
(the layout ``scripts/fid.py`` reads) for images, ``samples/scatter.png`` for 2-D data, and
``samples/score.json``. Scores: FD-digits-cnn with its noise floor, precision and recall for
``digits`` (offline, never called FID); FID/KID against the dataset's test split with ``--metric fid``
(needs the Inception weights file); sliced Wasserstein, MMD and mode coverage for 2-D data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genlab.data import TOY2D, Toy2D, build_image_dataset  # noqa: E402
from genlab.gans import load_generator  # noqa: E402
from genlab.train import save_grid, save_scatter, write_text_atomic  # noqa: E402

if TYPE_CHECKING:
    from genlab.metrics import Score

IMAGE_NAME = "{index:05d}.png"


@torch.no_grad()
def sample(generator: torch.nn.Module, num: int, latent_dim: int, seed: int, batch_size: int = 512) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(num, latent_dim, generator=g)
    return torch.cat([generator(chunk).float() for chunk in z.split(batch_size)])


def write_images(images: torch.Tensor, folder: Path) -> None:
    """One PNG per image, ``<index>.png``; earlier samples in the folder are replaced, not mixed in."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for i, image in enumerate(images):
        save_grid(image[None], folder / IMAGE_NAME.format(index=i), nrow=1, padding=0)


def score_images(images: torch.Tensor, dataset: str, metric: str, weights: str | None, seed: int) -> Score | None:
    # genlab.metrics imports torchmetrics (seconds): only when there is something to score
    from genlab.metrics import digits_scores, inception_scores

    if metric == "none":
        return None
    if metric == "digits" or (metric == "auto" and dataset == "digits"):
        if images.shape[1] != 1:
            raise ValueError(f"--metric digits needs 1-channel digit images; the generator makes {images.shape[1]} channels")
        return digits_scores(images, seed=seed)
    if metric in ("fid", "auto"):
        if metric == "auto" and weights is None:
            return None  # FID needs the Inception weights file; without it there is no offline score for this dataset
        reference = build_image_dataset(dataset, "test", images.shape[-1])
        real = torch.stack([reference[i][0] for i in range(len(reference))])
        return inception_scores(real, images, weights, reference=f"{dataset}:test ({len(real)} images)", seed=seed)["fid"]
    raise ValueError(f"--metric {metric!r} is not supported; expected auto, digits, fid or none")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="a train_gan.py run folder")
    parser.add_argument("--weights", default=None, help="generator weights; default <run>/weights/generator.safetensors")
    parser.add_argument("--out", default=None, help="output folder; default the run folder")
    parser.add_argument("--num", type=int, default=None, help="samples to draw; default 719 for digits, 2500 for 2-D, else 1000")
    parser.add_argument("--grid", type=int, default=64, help="images in the grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metric", default="auto", choices=["auto", "digits", "fid", "none"])
    parser.add_argument("--inception_weights", default=None, help="Inception weights file for --metric fid")
    args = parser.parse_args(argv)
    if args.run is None and args.weights is None:
        parser.error("pass --run (a run folder) or --weights (a generator weights file)")
    weights = Path(args.weights) if args.weights else Path(args.run) / "weights" / "generator.safetensors"
    out = Path(args.out or args.run or weights.parent.parent)
    if args.num is not None and args.num < 1:
        parser.error(f"--num must be >= 1; got {args.num}")

    generator, config = load_generator(weights)
    dataset = config.get("dataset", "")
    num = args.num or (719 if dataset == "digits" else 2500 if dataset in TOY2D else 1000)
    samples = sample(generator, num, config["latent_dim"], args.seed)
    result: dict = {"samples": num, "weights": str(weights), "seed": args.seed}
    if samples.ndim == 2:  # 2-D points
        from genlab.metrics import toy2d_scores

        title = f"{config.get('objective', 'generator')}, {num} samples"
        save_scatter(samples, out / "samples" / "scatter.png", title, reference=Toy2D(dataset, num, seed=args.seed + 777).points)
        result.update(toy2d_scores(samples, dataset, seed=args.seed))
        print(json.dumps(result))
    else:
        save_grid(samples[: args.grid], out / "samples" / "grid.png", nrow=8)
        write_images(samples, out / "samples" / "images")
        score = score_images(samples, dataset, args.metric, args.inception_weights, args.seed)
        if score is not None:
            print(score)
            result.update({"metric": score.metric, "value": score.value, "protocol": score.protocol, "extra": score.extra})
    write_text_atomic(out / "samples" / "score.json", json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:  # bad input: a clear message, not a stack trace
        sys.exit(f"sample_gan.py: error: {err}")
