"""Sharpness without a downloaded network: high-frequency spectral energy of reconstructions against
the originals they reconstruct.

The power spectrum ``|FFT2(x)|²`` of each image (per channel, summed over channels) is summed over the
frequencies whose radius ``‖(f_y, f_x)‖`` (cycles per pixel; Nyquist = 0.5) lies in the top ``band`` of
the radial range, ``[(1 − band)·0.5, 0.5]`` (the top band of the radially averaged power spectrum; the
corners beyond Nyquist are left out, so the band is isotropic). The ratio over a whole set,

    hf_ratio = Σ_images E_hf(x̂) / Σ_images E_hf(x),

is 1.0 when reconstructions carry as much fine detail as the data; blur (an L2-trained decoder's mean
prediction) is below 1, noise or ringing above.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_band(band: float) -> None:
    if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 < band <= 1:
        raise ValueError(f"band={band!r} must be a number in (0, 1]: the top fraction of the radial frequency range")


def high_frequency_energy(images: Tensor, band: float = 0.25) -> Tensor:
    """Per-image spectral energy ``(B,)`` (float64) of ``images (B, C, H, W)`` in the top ``band`` of radii."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W); got shape {tuple(images.shape)}")
    _check_band(band)
    h, w = images.shape[-2:]
    power = torch.fft.fft2(images.double()).abs().square().sum(1)  # (B, H, W)
    fy, fx = torch.fft.fftfreq(h, device=images.device), torch.fft.fftfreq(w, device=images.device)
    radius = torch.sqrt(fy[:, None].double() ** 2 + fx[None, :].double() ** 2)
    mask = (radius >= 0.5 * (1 - band)) & (radius <= 0.5)
    return (power * mask).flatten(1).sum(1) / (h * w)


def high_frequency_ratio(reconstructions: Tensor, originals: Tensor, band: float = 0.25) -> float:
    """``Σ E_hf(reconstructions) / Σ E_hf(originals)`` over the batch (module docstring); 1.0 = as sharp as the data."""
    if reconstructions.shape != originals.shape:
        raise ValueError(f"reconstructions {tuple(reconstructions.shape)} and originals {tuple(originals.shape)} "
                         "must have the same shape")
    ref = high_frequency_energy(originals, band).sum()
    if not ref > 0:
        raise ValueError("the originals have no energy in the high-frequency band (constant images?)")
    return (high_frequency_energy(reconstructions, band).sum() / ref).item()


__all__ = ["high_frequency_energy", "high_frequency_ratio"]
