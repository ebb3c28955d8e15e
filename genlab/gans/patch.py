"""PatchGAN discriminator: a conv critic that scores overlapping patches, not whole images.

The layout of pix2pix's ``NLayerDiscriminator`` (Isola et al. 2017, arXiv 1611.07004) as taming-transformers
uses it for VQGAN (Esser et al. 2021, arXiv 2012.09841): a stride-2 4x4 conv, ``n_layers − 1`` more
stride-2 4x4 convs doubling the width (capped at 8x), one stride-1 4x4 conv, then a stride-1 4x4 conv
to one logit per patch; LeakyReLU(0.2) between them, weights drawn from N(0, 0.02).

taming normalises with batch norm; here the norm is ``group`` (per sample) or ``none``, because the
gradient penalties of WGAN-GP and the ReFlow-derived critic are per sample and batch norm mixes the
samples of a batch (WGAN-GP §4).

    D = PatchDiscriminator(in_channels=3, channels=64, n_layers=3)
    logits = D(images)            # (B, 1, h, w): one logit per patch; h = w = 6 for 64 x 64 images

The objectives of :func:`genlab.gans.build_objective` take this map directly: f-GAN, hinge and
likelihood-ratio losses treat every patch logit as one score (taming's losses average over patches),
the penalty critics score each image by the mean of its patch logits.
"""

from __future__ import annotations

from torch import Tensor, nn

from genlab.nn.conv import group_norm
from genlab.utils import check_choice, check_positive_int

NORMS = ["group", "none"]


def patch_output_size(image_size: int, n_layers: int) -> int:
    """Side of the logit map for ``image_size`` inputs: ``n_layers`` halvings, then two 4x4 stride-1 convs (−1 each)."""
    size = image_size
    for _ in range(n_layers):
        size = (size + 2 - 4) // 2 + 1
    return size - 2


class PatchDiscriminator(nn.Module):
    """``(B, C, H, W) -> (B, 1, h, w)`` patch logits.

    Args:
        in_channels: image channels ``C``.
        channels: width of the first conv (taming: 64).
        n_layers: stride-2 convs (taming: 3; the receptive field is 70 x 70 pixels at 3).
        norm: ``"group"`` (per-sample GroupNorm) or ``"none"``.
    """

    def __init__(self, in_channels: int = 3, channels: int = 64, n_layers: int = 3, norm: str = "group"):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("channels", channels)
        check_positive_int("n_layers", n_layers)
        check_choice("norm", norm, NORMS)
        self.n_layers = n_layers

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=norm == "none")]
            if norm == "group":
                layers.append(group_norm(c_out))
            return layers + [nn.LeakyReLU(0.2)]

        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += block(channels * prev, channels * mult, 2)
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += block(channels * prev, channels * mult, 1)
        layers.append(nn.Conv2d(channels * mult, 1, 4, 1, 1))
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """taming's ``weights_init``: conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GroupNorm):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"images must be (B, C, H, W); got shape {tuple(x.shape)}")
        side = patch_output_size(min(x.shape[-2:]), self.n_layers)
        if side < 1:
            raise ValueError(f"images of {tuple(x.shape[-2:])} pixels are too small for n_layers={self.n_layers} "
                             "(no patch logit is left); use fewer layers or larger images")
        return self.layers(x)


__all__ = ["NORMS", "PatchDiscriminator", "patch_output_size"]
