"""Offline scores for generated digits in the feature space of the shipped digits classifier.

Labeled ``FD-digits-cnn`` (never FID). Generated samples are compared with an equally sized
random subset of the real train digits (what generative models are fitted to), and the noise floor (the same distance between two disjoint real
subsets of that size) is reported next to it, so a score is read against what real data gets.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genlab.data.digits import load_digits_tensors
from genlab.metrics.features import DEFAULT_WEIGHTS, NETWORK_NAME, digits_features
from genlab.metrics.frechet import frechet_distance_features, noise_floor, precision_recall
from genlab.metrics.protocol import Score, library_versions

MAX_SAMPLES = 1438 // 2  # two disjoint real subsets must fit in the 1438 train digits


def digits_scores(samples: Tensor, labels: Tensor | None = None, seed: int = 0, k: int = 3) -> Score:
    """FD-digits-cnn of ``samples (N, 1, H, W)`` in ``[-1, 1]`` against real digits.

    Args:
        samples: generated digits; ``N`` between 10 and 719 (larger sets are subsampled to 719).
        labels: intended classes ``(N,)`` of class-conditional samples: adds the classifier's
            accuracy on them.
        seed: seed of the real subsets.

    Returns:
        a :class:`Score` whose ``extra`` holds ``noise_floor``, ``precision``, ``recall``,
        ``real_precision`` / ``real_recall`` (the same for real vs real) and, with labels,
        ``accuracy`` and ``per_class_accuracy``.
    """
    if samples.ndim != 4 or samples.shape[1] != 1:
        raise ValueError(f"samples must be (N, 1, H, W) digit images; got shape {tuple(samples.shape)}")
    if len(samples) < 10:
        raise ValueError(f"digits_scores needs at least 10 samples; got {len(samples)}")
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain NaN or Inf")
    if labels is not None and labels.shape != (len(samples),):
        raise ValueError(f"labels must be ({len(samples)},); got shape {tuple(labels.shape)}")
    g = torch.Generator().manual_seed(seed)
    if len(samples) > MAX_SAMPLES:
        keep = torch.randperm(len(samples), generator=g)[:MAX_SAMPLES]
        samples, labels = samples[keep], (labels[keep] if labels is not None else None)
    n = len(samples)
    real, _ = load_digits_tensors("train", 16)
    real_feats, _ = digits_features(real)
    fake_feats, preds = digits_features(samples)
    perm = torch.randperm(len(real), generator=g)
    ref, other = real_feats[perm[:n]], real_feats[perm[n:2 * n]]
    extra = {"noise_floor": noise_floor(real_feats, n, seed=seed)}
    extra.update(precision_recall(ref, fake_feats, k))
    real_pr = precision_recall(ref, other, k)
    extra.update({"real_precision": real_pr["precision"], "real_recall": real_pr["recall"]})
    if labels is not None:
        correct = (preds == labels.cpu()).float()
        extra["accuracy"] = correct.mean().item()
        extra["per_class_accuracy"] = [round(correct[labels.cpu() == c].mean().item(), 4) if (labels == c).any() else None
                                       for c in range(10)]
    protocol = {"network": NETWORK_NAME, "weights": DEFAULT_WEIGHTS.name, "samples": n,
                "reference": f"{n} random real digits of the train split (1438, 16x16), seed {seed}",
                "noise_floor": f"mean over 5 pairs of disjoint random real subsets of {n}",
                "precision_recall_k": k, "versions": library_versions()}
    value = frechet_distance_features(ref, fake_feats)
    return Score(f"FD-{NETWORK_NAME}", value, protocol, extra)
