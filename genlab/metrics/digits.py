"""Offline scores for generated digits in the feature space of the shipped digits classifier.

Labeled ``FD-digits-cnn`` (never FID). Generated samples are compared with an equally sized
random subset of the real train digits (what generative models are fitted to), and the noise floor (the same distance between two disjoint real
subsets of that size) is reported next to it, so a score is read against what real data gets.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genlab.data.digits import load_digits_tensors
from genlab.metrics.features import DEFAULT_WEIGHTS, NETWORK_NAME, digits_features, weights_sha256
from genlab.metrics.frechet import frechet_distance_features, noise_floor, precision_recall
from genlab.metrics.protocol import Score, library_versions

def digits_scores(samples: Tensor, labels: Tensor | None = None, seed: int = 0, k: int = 3,
                  reference: Tensor | None = None, reference_name: str = "") -> Score:
    """FD-digits-cnn of ``samples (N, 1, H, W)`` in ``[-1, 1]`` against real digits.

    Args:
        samples: generated digits; ``N >= 10``, subsampled to half the reference set when larger
            (two disjoint reference subsets of ``N`` must fit for the noise floor).
        labels: intended classes ``(N,)`` of class-conditional samples: adds the classifier's
            accuracy on them.
        seed: seed of the real subsets.
        k: neighbourhood size of precision/recall.
        reference: reference images ``(M, 1, H', W')``; default the 1438 train digits at 16x16.
        reference_name: how the protocol names ``reference``.

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
    if reference is None:
        reference, _ = load_digits_tensors("train", 16)
        reference_name = reference_name or "the train split (1438, 16x16)"
    elif reference.ndim != 4 or reference.shape[1] != 1 or len(reference) < 20:
        raise ValueError(f"reference must be (M >= 20, 1, H, W) digit images; got shape {tuple(reference.shape)}")
    g = torch.Generator().manual_seed(seed)
    limit = len(reference) // 2
    if len(samples) > limit:
        keep = torch.randperm(len(samples), generator=g)[:limit]
        samples, labels = samples[keep], (labels[keep] if labels is not None else None)
    n = len(samples)
    real_feats, _ = digits_features(reference)
    fake_feats, preds = digits_features(samples)
    perm = torch.randperm(len(reference), generator=g)
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
    protocol = {"network": NETWORK_NAME, "weights": DEFAULT_WEIGHTS.name, "weights_sha256": weights_sha256(DEFAULT_WEIGHTS),
                "samples": n,
                "reference": f"{n} random images of {reference_name or 'the given reference'}, seed {seed}",
                "noise_floor": f"mean over 5 pairs of disjoint random real subsets of {n}",
                "precision_recall_k": k, "resize": "bilinear (antialiased) to 16x16", "versions": library_versions()}
    value = frechet_distance_features(ref, fake_feats)
    return Score(f"FD-{NETWORK_NAME}", value, protocol, extra)


def digits_reconstruction_scores(reconstructions: Tensor, originals: Tensor, labels: Tensor | None = None,
                                 seed: int = 0) -> dict[str, float]:
    """rFD-digits-cnn: the Frechet distance between a tokenizer's reconstructions and the originals they
    reconstruct, in the digits classifier's feature space (the offline analogue of rFID), with its floor.

    Args:
        reconstructions, originals: ``(N, 1, H, W)`` in ``[-1, 1]``, ``N >= 10``, row ``i`` reconstructing row ``i``.
        labels: the originals' classes ``(N,)``: adds the classifier's accuracy on both sets.
        seed: seed of the noise floor's real subsets.

    Returns:
        ``{"rfd_digits_cnn", "rfd_floor", "accuracy", "accuracy_originals"}`` (accuracies with labels only).
        ``rfd_floor`` is the same distance between two disjoint random sets of ``N`` train digits (the mean of
        5 pairs; ``N`` capped at half the train split): what sampling alone gives at this size.
    """
    if reconstructions.shape != originals.shape or originals.ndim != 4 or originals.shape[1] != 1:
        raise ValueError(f"reconstructions and originals must be (N, 1, H, W) of one shape; got "
                         f"{tuple(reconstructions.shape)} and {tuple(originals.shape)}")
    if len(originals) < 10:
        raise ValueError(f"digits_reconstruction_scores needs at least 10 images; got {len(originals)}")
    if labels is not None and labels.shape != (len(originals),):
        raise ValueError(f"labels must be ({len(originals)},); got shape {tuple(labels.shape)}")
    rec_feats, rec_preds = digits_features(reconstructions.float().clamp(-1, 1))
    orig_feats, orig_preds = digits_features(originals.float())
    train, _ = load_digits_tensors("train", 16)
    train_feats, _ = digits_features(train)
    scores = {"rfd_digits_cnn": frechet_distance_features(orig_feats, rec_feats),
              "rfd_floor": noise_floor(train_feats, min(len(originals), len(train) // 2), seed=seed)}
    if labels is not None:
        labels = labels.cpu()
        scores["accuracy"] = (rec_preds == labels).float().mean().item()
        scores["accuracy_originals"] = (orig_preds == labels).float().mean().item()
    return scores
