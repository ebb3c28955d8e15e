"""Image tokenizer: encoder -> quantizer (FSQ or VQ, by config) -> decoder; conv or ViT backbone, by config.

The encoder/decoder follow the VQGAN / LDM autoencoder layout (Esser et al. 2021): ResNet blocks
at each resolution, stride-2 downsampling, nearest-neighbour upsampling. ``downsample`` is the
spatial reduction factor (a power of two): a 32 x 32 image with ``downsample=4`` becomes an
8 x 8 grid of tokens.

    tok = build_tokenizer(TokenizerConfig(levels=[8, 5, 5, 5], downsample=4))
    out = tok(images)            # TokenizerOutput: reconstruction, loss, losses, indices
    ids = tok.encode(images)     # (B, H/4, W/4) long
    rec = tok.decode(ids)        # (B, C, H, W) in [-1, 1] (approximately)

``backbone="vit"`` swaps the ResNet stacks for a ViT over ``downsample x downsample`` patches with
RoPE-2D positions (genlab.nn.vit), ``channels`` wide, ``backbone_options`` giving depth, heads, ...
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from genlab.io import PretrainedMixin, known_fields
from genlab.nn.conv import Downsample, ResnetBlock, Upsample, group_norm
from genlab.nn.vit import ViTDecoder, ViTEncoder
from genlab.tokenizers.fsq import FSQ
from genlab.tokenizers.vq import VectorQuantizer
from genlab.utils import check_choice, check_finite

WEIGHTS_KIND = "ImageTokenizer"
DEFAULT_LEVELS = [8, 5, 5, 5]


@dataclass
class TokenizerConfig:
    """Architecture of an :class:`ImageTokenizer` (fields shared with the training scripts)."""

    image_channels: int = 3
    image_size: int = 32
    backbone: str = "conv"  # conv (ResNet blocks) | vit (Transformer on downsample x downsample patches, RoPE-2D)
    backbone_options: dict = field(default_factory=dict)  # vit: depth, heads, mixer, norm, mlp_ratio, ...
    channels: int = 64  # width of the first stage (vit: the Transformer width)
    channel_mult: list[int] = field(default_factory=list)  # per stage; empty = (1, 2, 2, 4, ...)[: log2(downsample) + 1]
    num_res_blocks: int = 1  # ResNet blocks per stage
    downsample: int = 4  # spatial reduction factor, a power of two
    quantizer: str = "fsq"  # fsq | vq
    levels: list[int] = field(default_factory=lambda: list(DEFAULT_LEVELS))  # FSQ levels
    quantizer_options: dict = field(default_factory=dict)  # extra quantizer arguments (VQ: dim, codebook_size, ...)
    rec_loss: str = "l2"  # l2 | l1

    def validate_tokenizer(self) -> None:
        check_choice("backbone", self.backbone, list(BACKBONES))
        check_choice("quantizer", self.quantizer, list(QUANTIZERS))
        check_choice("rec_loss", self.rec_loss, ["l2", "l1"])
        f = self.downsample
        if isinstance(f, bool) or not isinstance(f, int) or f < 1 or f & (f - 1):
            raise ValueError(f"downsample={f!r} must be a power of two (1, 2, 4, 8, 16)")
        if self.image_size % f:
            raise ValueError(f"image_size={self.image_size} must be divisible by downsample={f}")
        if self.channel_mult and len(self.channel_mult) != int(math.log2(f)) + 1:
            raise ValueError(
                f"channel_mult={self.channel_mult} needs log2(downsample)+1 = {int(math.log2(f)) + 1} entries for downsample={f}"
            )
        if self.quantizer != "fsq" and self.levels != DEFAULT_LEVELS:
            raise ValueError(f"levels={self.levels} is an FSQ option; quantizer={self.quantizer!r} does not use it "
                             "(set its options in quantizer_options)")
        with torch.random.fork_rng(devices=[]):  # a trial build checks quantizer_options; the RNG stays untouched
            build_quantizer(self)

    def stage_mults(self) -> list[int]:
        n = int(math.log2(self.downsample)) + 1
        return list(self.channel_mult) or [1, 2, 2, 4, 4, 4][:n]


def tokenizer_config_dict(cfg) -> dict:
    """The :class:`TokenizerConfig` fields of ``cfg`` (a script config that inherits them)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TokenizerConfig)}


class TokenizerOutput(NamedTuple):
    """``reconstruction (B, C, H, W)``, total ``loss``, the named ``losses``, ``indices``."""

    reconstruction: Tensor
    loss: Tensor
    losses: dict
    indices: Tensor


class ConvEncoder(nn.Module):
    """``(B, C, H, W) -> (B, z_channels, H/f, W/f)`` with ``f = 2^(len(mults) - 1)``."""

    def __init__(self, in_channels: int, z_channels: int, channels: int, mults: list[int], num_res_blocks: int):
        super().__init__()
        widths = [channels * m for m in mults]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1)]
        for i, w in enumerate(widths):
            prev = widths[max(i - 1, 0)]
            for j in range(num_res_blocks):
                layers.append(ResnetBlock(prev if j == 0 else w, w))
            if i < len(widths) - 1:
                layers.append(Downsample(w))
        layers += [ResnetBlock(widths[-1]), group_norm(widths[-1]), nn.SiLU(), nn.Conv2d(widths[-1], z_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class ConvDecoder(nn.Module):
    """``(B, z_channels, h, w) -> (B, C, h*f, w*f)``, the mirror of :class:`ConvEncoder`."""

    def __init__(self, out_channels: int, z_channels: int, channels: int, mults: list[int], num_res_blocks: int):
        super().__init__()
        widths = [channels * m for m in reversed(mults)]
        layers: list[nn.Module] = [nn.Conv2d(z_channels, widths[0], 3, padding=1), ResnetBlock(widths[0])]
        for i, w in enumerate(widths):
            prev = widths[max(i - 1, 0)]
            for j in range(num_res_blocks):
                layers.append(ResnetBlock(prev if j == 0 else w, w))
            if i < len(widths) - 1:
                layers.append(Upsample(w))
        layers += [group_norm(widths[-1]), nn.SiLU(), nn.Conv2d(widths[-1], out_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z)


def _conv_backbone(cfg: TokenizerConfig, z_channels: int) -> tuple[nn.Module, nn.Module]:
    if cfg.backbone_options:
        raise ValueError(f"backbone_options={cfg.backbone_options!r} apply to backbone='vit' only")
    mults = cfg.stage_mults()
    enc = ConvEncoder(cfg.image_channels, z_channels, cfg.channels, mults, cfg.num_res_blocks)
    dec = ConvDecoder(cfg.image_channels, z_channels, cfg.channels, mults, cfg.num_res_blocks)
    return enc, dec


def _vit_backbone(cfg: TokenizerConfig, z_channels: int) -> tuple[nn.Module, nn.Module]:
    """ViT encoder and decoder (genlab.nn.vit): patches of ``downsample`` pixels, width ``channels``."""
    if cfg.channel_mult:
        raise ValueError(f"channel_mult={cfg.channel_mult} applies to backbone='conv' only")
    opts = {"depth": 4, "heads": 4, **cfg.backbone_options}
    try:
        enc = ViTEncoder(cfg.image_channels, z_channels, cfg.downsample, cfg.channels, **opts)
        dec = ViTDecoder(cfg.image_channels, z_channels, cfg.downsample, cfg.channels, **opts)
    except TypeError as e:
        raise ValueError(f"backbone_options={cfg.backbone_options!r} do not fit backbone='vit': {e}") from None
    return enc, dec


# Inside the tokenizer the images are checked instead of the latents: a non-finite latent is a
# diverged model, which the non-finite loss reports with its step (train.check_finite_loss).
def _fsq(cfg: TokenizerConfig) -> nn.Module:
    return FSQ(cfg.levels, channel_first=True, **{"check_finite": False, **cfg.quantizer_options})


def _vq(cfg: TokenizerConfig) -> nn.Module:
    return VectorQuantizer(channel_first=True, **{"check_finite": False, **cfg.quantizer_options})


# name -> builder; other quantizers and backbones register here.
QUANTIZERS: dict[str, Callable[[TokenizerConfig], nn.Module]] = {"fsq": _fsq, "vq": _vq}
BACKBONES: dict[str, Callable[[TokenizerConfig, int], tuple[nn.Module, nn.Module]]] = {"conv": _conv_backbone,
                                                                                      "vit": _vit_backbone}


class ImageTokenizer(PretrainedMixin, nn.Module):
    """Encoder, quantizer and decoder; images ``(B, C, H, W)`` in ``[-1, 1]``.

    The quantizer is any module with genlab's quantizer call shape (``channel_first=True``):
    ``quantizer(z) -> (quantized, indices, loss)``, ``quantizer.indices_to_codes(indices)``,
    ``quantizer.codebook_size`` and ``quantizer.dim`` (its input channels).
    The training loss is the reconstruction loss (mean squared error or mean absolute error
    per pixel) plus the quantizer's auxiliary loss (zero for FSQ).

    ``save_pretrained(folder)`` / ``ImageTokenizer.from_pretrained(folder_or_file)`` keep a tokenizer
    built from a :class:`TokenizerConfig` (see :mod:`genlab.io`).
    """

    weights_kind = WEIGHTS_KIND

    def __init__(self, encoder: nn.Module, quantizer: nn.Module, decoder: nn.Module, rec_loss: str = "l2",
                 config: TokenizerConfig | None = None):
        super().__init__()
        check_choice("rec_loss", rec_loss, ["l2", "l1"])
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder
        self.rec_loss = rec_loss
        self.config = config

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def _check_images(self, images: Tensor) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be (B, C, H, W); got shape {tuple(images.shape)}")
        if self.config is not None:
            c = self.config.image_channels
            if images.shape[1] != c:
                raise ValueError(f"images have {images.shape[1]} channels; this tokenizer expects image_channels={c}")
            f = self.config.downsample
            if images.shape[-1] % f or images.shape[-2] % f:
                raise ValueError(f"image height and width must be divisible by downsample={f}; got {tuple(images.shape[-2:])}")
        check_finite("images", images)

    def forward(self, images: Tensor) -> TokenizerOutput:
        self._check_images(images)
        z = self.encoder(images)  # (B, D, h, w)
        quantized, indices, aux = self.quantizer(z)  # (B, D, h, w), (B, h, w)
        reconstruction = self.decoder(quantized)  # (B, C, H, W)
        diff = reconstruction.float() - images.float()
        rec = diff.square().mean() if self.rec_loss == "l2" else diff.abs().mean()
        losses = {"rec": rec, "quantizer": aux.float()}
        return TokenizerOutput(reconstruction, rec + aux.float(), losses, indices)

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Token indices ``(B, H/f, W/f)`` (long) of images ``(B, C, H, W)``."""
        self._check_images(images)
        return self.quantizer(self.encoder(images)).indices

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` from token indices ``(B, h, w)``."""
        if indices.ndim < 3:
            raise ValueError(f"indices must be (B, h, w); got shape {tuple(indices.shape)}")
        return self.decoder(self.quantizer.indices_to_codes(indices))

    def pretrained_config(self) -> dict:
        """The :class:`TokenizerConfig` fields that rebuild this tokenizer (``save_pretrained``)."""
        if self.config is None:
            raise ValueError("this ImageTokenizer was assembled from modules, not built from a TokenizerConfig; "
                             "build it with build_tokenizer(TokenizerConfig(...)) to save it with save_pretrained")
        return dataclasses.asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "ImageTokenizer":
        """A fresh tokenizer from a stored config (keys that are not :class:`TokenizerConfig` fields are ignored)."""
        return build_tokenizer(TokenizerConfig(**known_fields(config, TokenizerConfig)))


def build_quantizer(cfg: TokenizerConfig) -> nn.Module:
    """The quantizer named by ``cfg.quantizer``, built with ``cfg.quantizer_options``."""
    check_choice("quantizer", cfg.quantizer, list(QUANTIZERS))
    try:
        return QUANTIZERS[cfg.quantizer](cfg)
    except TypeError as e:
        raise ValueError(f"quantizer_options={cfg.quantizer_options!r} do not fit quantizer={cfg.quantizer!r}: {e}") from None


def build_tokenizer(cfg) -> ImageTokenizer:
    """An :class:`ImageTokenizer` from a :class:`TokenizerConfig` (or a config inheriting its fields)."""
    tcfg = TokenizerConfig(**tokenizer_config_dict(cfg))
    tcfg.validate_tokenizer()
    quantizer = build_quantizer(tcfg)
    encoder, decoder = BACKBONES[tcfg.backbone](tcfg, quantizer.dim)
    return ImageTokenizer(encoder, quantizer, decoder, tcfg.rec_loss, config=tcfg)


__all__ = ["ConvDecoder", "ConvEncoder", "ImageTokenizer", "TokenizerConfig", "TokenizerOutput", "build_quantizer",
           "build_tokenizer", "tokenizer_config_dict"]
