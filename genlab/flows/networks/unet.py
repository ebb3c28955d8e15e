"""diffusers' ``UNet2DModel`` as a genlab velocity network (images ``(B, C, H, W)``).

The U-Net is diffusers' (Ronneberger et al. 2015 as adapted by DDPM/ADM); this wrapper only maps
genlab's interface onto it: genlab time ``t`` in ``[0, 1]`` (0 = noise) enters as ``t * 1000``
through the U-Net's own sinusoidal embedding, and class labels (with the null class
``num_classes``) through its ``num_class_embeds`` table. The output is genlab's velocity
(data - noise), not diffusers' ``noise - data``.
"""

from __future__ import annotations

import math

from torch import Tensor

from genlab.flows.networks.base import VelocityNet
from genlab.flows.networks.embeddings import TIME_SCALE


class UNetVelocity(VelocityNet):
    """Velocity field on images backed by ``diffusers.UNet2DModel``.

    Args:
        image_size, channels: data shape ``(channels, image_size, image_size)``.
        width: channels of the first level; level ``i`` has ``width * channel_mult[i]``.
        channel_mult: one entry per resolution level (each level but the last halves the size).
        layers_per_block: ResNet blocks per level.
        attention_levels: levels (indices into ``channel_mult``) with self-attention.
        num_classes: classes for conditioning (0 = unconditional); ``num_classes`` is the null class.
        dropout: dropout inside the ResNet blocks.
    """

    def __init__(self, image_size: int = 16, channels: int = 1, width: int = 32, channel_mult: tuple[int, ...] = (1, 2, 2),
                 layers_per_block: int = 1, attention_levels: tuple[int, ...] = (1,), num_classes: int = 0,
                 dropout: float = 0.0, head_dim: int = 32):
        super().__init__()
        from diffusers import UNet2DModel

        levels = len(channel_mult)
        if image_size % 2 ** (levels - 1):
            raise ValueError(f"image_size={image_size} must be divisible by 2^(len(channel_mult) - 1) = {2 ** (levels - 1)}")
        bad = [i for i in attention_levels if not 0 <= i < levels]
        if bad:
            raise ValueError(f"attention_levels={list(attention_levels)} must index channel_mult (0..{levels - 1})")
        widths = [width * m for m in channel_mult]
        groups = math.gcd(32, *widths)
        self.data_shape, self.num_classes = (channels, image_size, image_size), num_classes
        self.net_config = {"net": "unet", "width": width, "channel_mult": list(channel_mult), "layers_per_block": layers_per_block,
                           "attention_levels": list(attention_levels), "dropout": dropout}
        self.head_dim = head_dim
        self.unet = UNet2DModel(
            sample_size=image_size, in_channels=channels, out_channels=channels,
            block_out_channels=tuple(widths), layers_per_block=layers_per_block,
            down_block_types=tuple("AttnDownBlock2D" if i in attention_levels else "DownBlock2D" for i in range(levels)),
            up_block_types=tuple("AttnUpBlock2D" if i in attention_levels else "UpBlock2D" for i in reversed(range(levels))),
            norm_num_groups=groups, attention_head_dim=head_dim, dropout=dropout,
            num_class_embeds=num_classes + 1 if num_classes else None,
        )

    def pretrained_config(self) -> dict:
        if self.head_dim != 32:  # FlowNetConfig (what rebuilds a saved net) has no head_dim
            raise ValueError(f"save_pretrained keeps U-Nets with head_dim=32 (what build_velocity_net makes); this one has {self.head_dim}")
        return super().pretrained_config()

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        self.check_inputs(x, t, labels)
        return self.unet(x, t.float() * TIME_SCALE, class_labels=labels).sample  # (B, C, H, W)
