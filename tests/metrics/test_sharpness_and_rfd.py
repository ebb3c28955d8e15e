"""The high-frequency ratio (blur below 1, noise above, 1 for the data itself) and rFD-digits-cnn."""

import pytest
import torch
import torch.nn.functional as F

from genlab.data import load_digits_tensors
from genlab.metrics import digits_reconstruction_scores, high_frequency_energy, high_frequency_ratio


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=x.shape[1])


def test_blur_lowers_and_noise_raises_the_ratio():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    assert high_frequency_ratio(x, x) == pytest.approx(1.0)
    assert high_frequency_ratio(_blur(x), x) < 0.3
    assert high_frequency_ratio(x + 0.5 * torch.randn(x.shape, generator=g), x) > 1.1


def test_band_holds_only_the_top_frequencies():
    i = torch.arange(16.0)
    checker = ((i[:, None] + i[None, :]) % 2 * 2 - 1).expand(1, 1, 16, 16)  # all energy at Nyquist (0.5, 0.5)...
    smooth = torch.cos(2 * torch.pi * i / 16).expand(1, 1, 16, 16)  # ... or at 1/16 cycle per pixel
    assert high_frequency_energy(smooth).item() == pytest.approx(0.0, abs=1e-9)
    assert high_frequency_energy(checker).item() == 0.0  # the corner (radius 0.707) is beyond Nyquist: outside
    stripes = ((i % 2) * 2 - 1).expand(1, 1, 16, 16)  # (0, 0.5): on the Nyquist circle
    assert high_frequency_energy(stripes).item() == pytest.approx(16 * 16)
    with pytest.raises(ValueError, match="band=0"):
        high_frequency_energy(stripes, band=0)
    with pytest.raises(ValueError, match="same shape"):
        high_frequency_ratio(stripes, stripes[..., :8])


def test_rfd_of_the_originals_is_zero_and_of_blur_is_positive():
    x, y = load_digits_tensors("test", 16)
    x, y = x[:200], y[:200]
    same = digits_reconstruction_scores(x, x, y)
    assert same["rfd_digits_cnn"] == pytest.approx(0.0, abs=1e-3) and same["accuracy"] == same["accuracy_originals"] >= 0.95
    blurred = digits_reconstruction_scores(_blur(_blur(x)), x, y)
    assert blurred["rfd_digits_cnn"] > 1.0 and blurred["rfd_floor"] > 0
    with pytest.raises(ValueError, match="one shape"):
        digits_reconstruction_scores(x[:20], x[:30])
