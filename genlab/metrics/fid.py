"""FID and KID with the standard Inception network (torchmetrics / torch-fidelity), offline.

torchmetrics downloads the Inception weights when the metric is built; genlab never downloads at
run time. It takes the weights file ``weights-inception-2015-12-05-6726825d.pth`` from a path the
user gives, or from the torch hub cache (``<torch.hub.get_dir()>/checkpoints/``) where
torch-fidelity stores it after a download on a connected machine, and fails with a message that
names the exact place otherwise.

Images are float ``(B, C, H, W)`` in ``[-1, 1]``, converted to uint8 by rounding (not truncation)
as the reference implementations expect; gray images are repeated to 3 channels. The network
resizes to 299 x 299 itself (bilinear, torch-fidelity's resize).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from genlab.metrics.protocol import Score, library_versions
from genlab.resources import find_hub_weights
from genlab.utils import to_uint8

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
UNBIASED_SAMPLES = 10_000


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """The Inception weights file: ``path`` if given, else the torch hub cache; never downloads."""
    return find_hub_weights(path, INCEPTION_FILE, "Inception", "FID", "inception_weights", INCEPTION_URL)


def _check_sets(real: Tensor, fake: Tensor) -> None:
    for name, x in (("real", real), ("fake", fake)):
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"{name} images must be (B, 1 or 3, H, W); got shape {tuple(x.shape)}")
        if len(x) < 2:
            raise ValueError(f"{name} has {len(x)} image(s); FID needs at least 2 per set")
    if min(len(real), len(fake)) < UNBIASED_SAMPLES:
        warnings.warn(
            f"FID/KID with {len(real)} real and {len(fake)} generated images is biased upwards; the standard "
            f"protocol uses at least {UNBIASED_SAMPLES} (report the sample count with the score)", stacklevel=3)


def _batches(x: Tensor, batch_size: int):
    for chunk in x.split(batch_size):
        chunk = to_uint8(chunk)
        yield chunk.repeat(1, 3, 1, 1) if chunk.shape[1] == 1 else chunk


def _sha256(path: Path) -> str:
    from genlab.io import sha256_file

    return sha256_file(path)


def load_inception(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
    """torchmetrics' ``NoTrainInceptionV3`` (2048-d pool features) loaded from a local weights file."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = find_inception_weights(weights)
    try:
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path))
    except Exception as e:  # a corrupt or foreign file fails deep inside torch.load / load_state_dict
        raise ValueError(f"Inception weights {str(path)!r} could not be loaded ({type(e).__name__}: {e})") from None
    return net.to(device), path


@torch.no_grad()
def inception_features(net, images: Tensor, batch_size: int = 64) -> Tensor:
    device = next(net.parameters()).device
    return torch.cat([net(chunk.to(device)).double().cpu() for chunk in _batches(images, batch_size)])


def inception_scores(real: Tensor, fake: Tensor, weights: str | os.PathLike | None = None, reference: str = "",
                     kid_subset_size: int = 1000, kid_subsets: int = 100, batch_size: int = 64,
                     device: str | torch.device = "cpu", seed: int = 0) -> dict[str, Score]:
    """FID and KID of ``fake`` against ``real`` with the standard Inception network.

    Features are extracted once; FID is the float64 Frechet distance of their gaussians (Heusel
    et al. 2017), KID the mean unbiased polynomial-kernel MMD over random subsets (Binkowski et
    al. 2018, torchmetrics' ``poly_mmd``). Returns ``{"fid": Score, "kid": Score}`` with the
    protocol (sample counts, reference, resize mode, weights sha256, library versions).
    """
    from torchmetrics.image.kid import poly_mmd

    from genlab.metrics.frechet import frechet_distance_features

    _check_sets(real, fake)
    net, path = load_inception(weights, device)
    f_real, f_fake = inception_features(net, real, batch_size), inception_features(net, fake, batch_size)
    g = torch.Generator().manual_seed(seed)
    size = min(kid_subset_size, len(real), len(fake))
    kids = torch.stack([poly_mmd(f_real[torch.randperm(len(f_real), generator=g)[:size]],
                                 f_fake[torch.randperm(len(f_fake), generator=g)[:size]]) for _ in range(kid_subsets)])
    protocol = {"real_images": len(real), "fake_images": len(fake), "reference": reference,
                "resize": "bilinear to 299x299 (torch-fidelity)", "uint8": "rounded",
                "weights": str(path), "weights_sha256": _sha256(path), "versions": library_versions()}
    return {"fid": Score("FID", frechet_distance_features(f_real, f_fake), protocol),
            "kid": Score("KID", kids.mean().item(), {**protocol, "kid_subset_size": size, "kid_subsets": kid_subsets},
                         {"kid_std": kids.std(unbiased=False).item()})}
