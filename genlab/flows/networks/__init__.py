"""Velocity networks: an MLP for points, diffusers' U-Net and a small RoPE-2D DiT for images.

    cfg = FlowNetConfig(net="dit", width=128, depth=4)
    net = build_velocity_net(cfg, data_shape=(1, 16, 16), num_classes=10)
    v = net(x, t, labels)                                  # (B, 1, 16, 16)
    net = VelocityNet.from_pretrained("runs/flow_digits/weights/flow_ema.safetensors")  # or a saved folder

Presets are a registry of small factory functions (``NETS``); weights files carry the config
that rebuilds them (``kind = "FlowVelocityNet"``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch

from genlab.flows.networks.base import WEIGHTS_KIND, VelocityNet
from genlab.flows.networks.dit import DiT
from genlab.flows.networks.embeddings import LabelEmbedding, TimeEmbedding, drop_labels, timestep_embedding
from genlab.flows.networks.mlp import VelocityMLP
from genlab.flows.networks.unet import UNetVelocity
from genlab.utils import check_choice


@dataclass
class FlowNetConfig:
    """Architecture of a velocity network (fields shared with the training script's config)."""

    net: str = "unet"  # mlp | unet | dit
    width: int = 32  # mlp hidden width | unet channels of the first level | dit model width
    depth: int = 4  # mlp residual blocks | dit blocks
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])  # unet: channels per level
    layers_per_block: int = 1  # unet: ResNet blocks per level
    attention_levels: list[int] = field(default_factory=lambda: [1])  # unet: levels with self-attention
    patch_size: int = 2  # dit
    heads: int = 4  # dit attention heads
    mlp_ratio: float = 4.0  # dit
    dropout: float = 0.0  # unet / dit

    def validate_net(self) -> None:
        check_choice("net", self.net, list(NETS))
        for key in ("width", "depth", "layers_per_block", "patch_size", "heads"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"config key {key!r}={value!r} must be an integer >= 1")
        if not self.channel_mult or any(m < 1 for m in self.channel_mult):
            raise ValueError(f"config key 'channel_mult'={self.channel_mult!r} must be a non-empty list of integers >= 1")
        if not self.mlp_ratio > 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"mlp_ratio={self.mlp_ratio!r} must be > 0 and dropout={self.dropout!r} in [0, 1)")


def net_config_dict(cfg) -> dict:
    """The :class:`FlowNetConfig` fields of ``cfg`` (a script config that inherits them)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(FlowNetConfig)}


def _mlp(c: FlowNetConfig, shape: tuple[int, ...], num_classes: int) -> VelocityNet:
    if len(shape) != 1:
        raise ValueError(f"net='mlp' is for points (dim,); got data_shape {shape}; use 'unet' or 'dit' for images")
    return VelocityMLP(shape[0], c.width, c.depth, num_classes)


def _image_shape(net: str, shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"net={net!r} is for square images (C, S, S); got data_shape {shape}")
    return shape[0], shape[1]


def _unet(c: FlowNetConfig, shape: tuple[int, ...], num_classes: int) -> VelocityNet:
    channels, size = _image_shape("unet", shape)
    return UNetVelocity(size, channels, c.width, tuple(c.channel_mult), c.layers_per_block, tuple(c.attention_levels),
                        num_classes, c.dropout)


def _dit(c: FlowNetConfig, shape: tuple[int, ...], num_classes: int) -> VelocityNet:
    channels, size = _image_shape("dit", shape)
    return DiT(size, channels, c.patch_size, c.width, c.depth, c.heads, c.mlp_ratio, num_classes, c.dropout)


NETS: dict[str, Callable[[FlowNetConfig, tuple[int, ...], int], VelocityNet]] = {"mlp": _mlp, "unet": _unet, "dit": _dit}


def build_velocity_net(cfg, data_shape: tuple[int, ...] | list[int], num_classes: int = 0) -> VelocityNet:
    """A velocity network from a :class:`FlowNetConfig` (or a config inheriting its fields)."""
    c = FlowNetConfig(**net_config_dict(cfg))
    c.validate_net()
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes={num_classes!r} must be an integer >= 0 (0 = unconditional)")
    return NETS[c.net](c, tuple(data_shape), num_classes)


def velocity_net_metadata(cfg, data_shape: tuple[int, ...], num_classes: int) -> dict:
    """The config stored in a weights file: the net fields plus ``data_shape`` and ``num_classes``."""
    return {**net_config_dict(cfg), "data_shape": list(data_shape), "num_classes": num_classes}


def load_velocity_net(path: str, map_location: str | torch.device = "cpu") -> VelocityNet:
    """``VelocityNet.from_pretrained(path)``: a ``save_pretrained`` folder or a weights file of ``train_flow.py``."""
    return VelocityNet.from_pretrained(path, map_location)


__all__ = [
    "DiT", "FlowNetConfig", "LabelEmbedding", "NETS", "TimeEmbedding", "UNetVelocity", "VelocityMLP", "VelocityNet",
    "WEIGHTS_KIND", "build_velocity_net", "drop_labels", "load_velocity_net", "net_config_dict", "timestep_embedding",
    "velocity_net_metadata",
]
