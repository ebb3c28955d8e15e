"""A small CNN trained on the embedded digits: the offline feature network for generated digits.

FID's Inception network needs weights from the internet; for the embedded ``digits`` data genlab
ships this classifier inside the package (``genlab/assets/digits_classifier.safetensors``, trained by
``scripts/train_feature_net.py`` on the train split). Scores in its 128-d penultimate feature
space are labeled ``FD-digits-cnn``, never FID.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.io import PretrainedMixin, sha256_file
from genlab.resources import asset_path

NETWORK_NAME = "digits-cnn"
WEIGHTS_KIND = "DigitsClassifier"
INPUT_SIZE = 16
DEFAULT_WEIGHTS = asset_path("digits_classifier.safetensors")


class DigitsClassifier(PretrainedMixin, nn.Module):
    """``(B, 1, H, W)`` digits in ``[-1, 1]`` (resized to 16 x 16) -> 10 logits; ``features`` is 128-d."""

    weights_kind = WEIGHTS_KIND

    def __init__(self, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.width, self.feature_dim = width, feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8 x 8
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4 x 4
            nn.Flatten(), nn.Linear(2 * width * 16, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, 10)

    def pretrained_config(self) -> dict:
        return {"width": self.width, "feature_dim": self.feature_dim}

    @classmethod
    def from_config(cls, config: dict) -> "DigitsClassifier":
        """A fresh network; the shipped file stores its accuracy and provenance, not its (default) sizes."""
        return cls(width=config.get("width", 32), feature_dim=config.get("feature_dim", 128))

    @staticmethod
    def prepare(images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"digit images must be (B, 1, H, W); got shape {tuple(images.shape)}")
        x = images.float()
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x.clamp(-1, 1)

    def features(self, images: Tensor) -> Tensor:
        """Penultimate features ``(B, 128)``."""
        return self.body(self.prepare(images))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


@lru_cache(maxsize=2)
def load_digits_classifier(path: str | None = None) -> DigitsClassifier:
    """The shipped classifier (or one at ``path``: a file or a ``save_pretrained`` folder), in eval mode on the CPU."""
    path = Path(path) if path else DEFAULT_WEIGHTS
    if not path.exists():
        raise FileNotFoundError(
            f"digits classifier weights {str(path)!r} are missing; they ship inside the genlab package "
            "(genlab/assets/) and can be rebuilt offline with `python scripts/train_feature_net.py`"
        )
    return DigitsClassifier.from_pretrained(path)


def weights_sha256(path: str | Path | None = None) -> str:
    """sha256 of the classifier weights file at ``path`` (default: the shipped one), recorded with every score."""
    return sha256_file(path or DEFAULT_WEIGHTS)


@torch.no_grad()
def digits_features(images: Tensor, batch_size: int = 512, path: str | None = None) -> tuple[Tensor, Tensor]:
    """``(features (N, 128), predicted labels (N,))`` of digit images under the shipped network."""
    net = load_digits_classifier(path)
    feats, preds = [], []
    for chunk in images.split(batch_size):
        f = net.features(chunk.cpu())
        feats.append(f)
        preds.append(net.head(f).argmax(1))
    return torch.cat(feats), torch.cat(preds)
