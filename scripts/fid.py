"""Compare two image sets and print the score with its protocol.

    python scripts/fid.py --a digits:test --b digits:train                 # real vs real, offline
    python scripts/fid.py --a samples/ --b digits                          # a folder vs an embedded dataset
    python scripts/fid.py --a runs/flow_digits                             # a run's samples vs its dataset
    python scripts/fid.py --a imgs1/ --b imgs2/ --metric fid --inception_weights weights-inception-2015-12-05-6726825d.pth

A source is ``digits[:train|test|all]``, ``photos[:train|test]``, a folder of PNG/JPEG images, or a
run folder (its ``samples/images/`` against the dataset named in its ``config.yaml``; for a run on
your own images, ``--dataset folder``, the held-out split of that folder). A sample
file named ``<index>_<label>.png`` carries its intended class.

Metrics: ``digits`` (default for gray digit images) is the Frechet distance in the feature space
of genlab's shipped digits classifier (labeled FD-digits-cnn, never FID), with its noise floor,
precision/recall and, for labeled samples, the classifier's accuracy; ``fid`` is FID and KID with
the standard Inception network, which needs its weights file (never downloaded).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from genlab.data import build_image_dataset
from genlab.metrics import Score, digits_scores, inception_scores
from genlab.train import parse_config
from genlab.train.config import load_yaml
from genlab.io import write_text_atomic

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass
class FIDConfig:
    """The two image sets and the metric."""

    a: str = ""  # generated (or first) image set (required): a source, see above
    b: str = ""  # reference set; empty = the run's dataset (train split, or its folder's held-out split), else digits:train
    metric: str = ""  # digits | fid; empty = digits for 1-channel images, else fid
    inception_weights: str = ""  # path to the Inception weights file for --metric fid (never downloaded)
    image_size: int = 16  # size of embedded digits
    seed: int = 0  # seeds the noise-floor split
    json: str = ""  # also write the score and protocol to this file

    def validate(self) -> None:
        if not self.a:
            raise ValueError("fid.py needs --a (an image set); see --help")
        if self.metric not in ("", "digits", "fid"):
            raise ValueError(f"--metric {self.metric!r} is not supported; expected digits or fid")


def load_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images of a folder as ``(N, C, H, W)`` in ``[-1, 1]`` and labels parsed from ``<i>_<label>.png``."""
    import numpy as np
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise FileNotFoundError(f"image folder {str(folder)!r} holds {len(files)} images; need at least 2")
    images, labels = [], []
    for p in files:
        img = Image.open(p)
        img = img.convert("L" if img.mode in ("L", "I", "1", "LA") else "RGB")
        arr = torch.from_numpy(np.asarray(img, dtype=np.float32)).reshape(img.height, img.width, -1)
        images.append(arr.permute(2, 0, 1) / 127.5 - 1)
        stem = p.stem.split("_")
        labels.append(int(stem[-1]) if len(stem) > 1 and stem[-1].isdigit() else None)
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise ValueError(f"images in {str(folder)!r} have different shapes {sorted(shapes)}; resize them first")
    has_labels = all(v is not None for v in labels)
    return torch.stack(images), (torch.tensor(labels) if has_labels else None)


def load_source(spec: str, image_size: int) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """``(images, labels or None, description)`` of a source (see the module docstring)."""
    name, _, split = spec.partition(":")
    if name == "run":
        return folder_reference(split)
    if name in ("digits", "photos"):
        split = split or ("train" if name == "digits" else "test")
        ds = build_image_dataset(name, split, image_size if name == "digits" else 32)
        items = [ds[i] for i in range(len(ds))]
        labels = torch.tensor([int(y) for _, y in items]) if name == "digits" else None
        return torch.stack([x for x, _ in items]), labels, f"{name}:{split} ({len(items)} images)"
    path = Path(spec)
    if (path / "config.yaml").is_file():
        images, labels = load_folder(path / "samples" / "images")
        return images, labels, f"{spec}/samples/images ({len(images)} images)"
    if path.is_dir():
        images, labels = load_folder(path)
        return images, labels, f"{spec} ({len(images)} images)"
    raise FileNotFoundError(f"source {spec!r} is neither an embedded dataset (digits, photos) nor a folder")


def run_dataset(spec: str) -> str:
    """The dataset a run folder was trained on, as a source spec (``run:<folder>`` for a run on an image folder)."""
    cfg = load_yaml(Path(spec) / "config.yaml")
    if cfg.get("dataset") == "folder":
        return f"run:{spec}"
    return f"{cfg.get('dataset', 'digits')}:train"


def folder_reference(run: str) -> tuple[torch.Tensor, None, str]:
    """The held-out images of a run trained with ``--dataset folder``, at the run's size and channels."""
    cfg = load_yaml(Path(run) / "config.yaml")
    ds = build_image_dataset("folder", "test", cfg["image_size"], root=cfg["data_root"],
                             channels=cfg.get("image_channels", 3), test_fraction=cfg.get("test_fraction", 0.1),
                             test_root=cfg.get("test_root", ""), split_seed=cfg.get("seed", 0))
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    return images, None, f"{cfg['data_root']} held-out split ({len(images)} images)"


def main(argv: list[str] | None = None) -> Score:
    args = parse_config(FIDConfig, argv, doc=__doc__, prog="fid.py")

    b_spec = args.b or (run_dataset(args.a) if (Path(args.a) / "config.yaml").is_file() else "digits:train")
    a, labels, desc_a = load_source(args.a, args.image_size)
    b, _, desc_b = load_source(b_spec, args.image_size)
    metric = args.metric or ("digits" if a.shape[1] == 1 and b.shape[1] == 1 else "fid")
    if metric == "digits":
        if a.shape[1] != 1 or b.shape[1] != 1:
            raise ValueError("--metric digits needs 1-channel digit images in both sets; use --metric fid for color images")
        score = digits_scores(a, labels, seed=args.seed, reference=b, reference_name=desc_b)
        score.protocol["set_a"] = desc_a
        print(score)
    else:
        scores = inception_scores(b, a, args.inception_weights or None, reference=desc_b)
        score = scores["fid"]
        print(score)
        print(scores["kid"])
    if args.json:
        write_text_atomic(Path(args.json), score.to_json())
    return score


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as err:  # bad input: a clear message, not a stack trace
        sys.exit(f"fid.py: error: {err}")
