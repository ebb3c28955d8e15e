"""The training loss of an image tokenizer as VQGAN trains it: reconstruction + perceptual + adversarial.

taming-transformers' ``VQLPIPSWithDiscriminator`` (Esser et al. 2021, arXiv 2012.09841, Eq. 5-7) with
genlab's parts:

    nll   = rec(x, x̂) + perceptual_weight · LPIPS(x, x̂)
    λ_adv = disc_weight · clamp(‖∇_W nll‖ / (‖∇_W g_loss‖ + 1e-4), 0, 1e4).detach()      (adaptive weight)
    L_tok = nll + λ_adv · g_loss + quantizer loss,       g_loss = the objective's generator loss on x̂

``W`` is the decoder's last layer (:func:`last_layer`); ``g_loss`` and the discriminator's loss come from
:func:`genlab.gans.build_objective` by name (``hinge``, ``fgan_gan`` = the non-saturating GAN, ``reflow``
= the ReFlow-derived critic, ``wgan_gp``, ...), and the discriminator is a
:class:`~genlab.gans.PatchDiscriminator` with its own Adam optimizer (betas (0.5, 0.9), as taming).
The discriminator learns from step ``disc_start + 1`` and the tokenizer receives the adversarial term
from step ``gan_start + 1`` (``gan_start >= disc_start``), so the discriminator is not untrained when its
gradient first reaches the decoder (taming gates both with one ``disc_start``).

LPIPS (Zhang et al. 2018, arXiv 1801.03924) comes from the ``lpips`` package: its linear layers ship
inside the package; its VGG16 backbone is torchvision's ImageNet file ``vgg16-397923af.pth``, read from a
path or the torch hub cache and never downloaded.

    loss = TokenizerLoss(TokenizerLossConfig(adversarial="hinge", perceptual_weight=1.0), image_channels=3)
    D, opt_d = loss.build_discriminator(lr=2e-4)
    out = tokenizer(images)
    total, logs = loss.generator_loss(step, images, out, last_layer(tokenizer.decoder), D)
    total.backward(); opt.step()
    loss.discriminator_step(step, images, out.reconstruction, D, opt_d, backward=lambda l: l.backward())
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from unittest import mock

import torch
from torch import Tensor, nn

from genlab.gans import OBJECTIVES, LeCam, NonFiniteCriticError, PatchDiscriminator, build_objective
from genlab.gans.objectives import PenaltyObjective, patch_scores
from genlab.gans.patch import NORMS
from genlab.resources import find_hub_weights
from genlab.utils import check_choice, check_positive_int

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
VGG16_URL = "https://download.pytorch.org/models/" + VGG16_FILE
ADVERSARIAL = ["none", *OBJECTIVES]
ADAPTIVE_EPS = 1e-4  # taming: ‖∇ nll‖ / (‖∇ g‖ + 1e-4)
ADAPTIVE_MAX = 1e4  # taming: clamp(·, 0, 1e4)


@dataclass
class TokenizerLossConfig:
    """The loss fields of tokenizer training (mixed into the training script's config)."""

    perceptual_weight: float = 0.0  # LPIPS-VGG weight (taming: 1.0); needs the VGG16 weights file
    perceptual_weights: str | None = None  # path of vgg16-397923af.pth; default: <torch hub dir>/checkpoints/
    adversarial: str = "none"  # none | hinge | fgan_gan (non-saturating) | reflow | wgan_gp | another genlab.gans objective
    disc_weight: float = 0.8  # taming's ImageNet VQGAN
    adaptive_weight: bool = True  # VQGAN's gradient-norm ratio at the decoder's last layer (else disc_weight alone)
    disc_start: int = 0  # the discriminator learns from step disc_start + 1
    gan_start: int | None = None  # the tokenizer gets the adversarial term from step gan_start + 1 (default disc_start)
    disc_lr: float | None = None  # default: the tokenizer's lr
    disc_betas: list[float] = field(default_factory=lambda: [0.5, 0.9])  # the discriminator's Adam betas (taming)
    disc_channels: int = 64  # width of the first PatchGAN conv
    disc_layers: int = 3  # stride-2 convs of the PatchGAN (2 for 16 x 16 images)
    disc_norm: str = "group"  # group | none (never batch norm: the penalties are per sample)
    lecam_weight: float = 0.0  # LeCam regulariser on the discriminator (Tseng et al. 2021); 0 = off

    def validate_losses(self) -> None:
        check_choice("adversarial", self.adversarial, ADVERSARIAL)
        check_choice("disc_norm", self.disc_norm, NORMS)
        for key in ("perceptual_weight", "disc_weight", "lecam_weight"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"{key}={v!r} must be a number >= 0")
        check_positive_int("disc_channels", self.disc_channels)
        check_positive_int("disc_layers", self.disc_layers)
        check_positive_int("disc_start", self.disc_start, minimum=0)
        if self.gan_start is not None:
            check_positive_int("gan_start", self.gan_start, minimum=0)
            if self.gan_start < self.disc_start:
                raise ValueError(f"gan_start={self.gan_start} must be >= disc_start={self.disc_start}: the discriminator "
                                 "must be learning before its gradient reaches the decoder")
        if self.disc_lr is not None and not (isinstance(self.disc_lr, (int, float)) and self.disc_lr > 0):
            raise ValueError(f"disc_lr={self.disc_lr!r} must be a positive number (or None for the tokenizer's lr)")
        if len(self.disc_betas) != 2 or not all(0 <= b < 1 for b in self.disc_betas):
            raise ValueError(f"disc_betas={self.disc_betas!r} must be two numbers in [0, 1)")
        if self.lecam_weight > 0 and self.adversarial == "none":
            raise ValueError(f"lecam_weight={self.lecam_weight} regularises the discriminator; set adversarial too")


def find_vgg16_weights(path: str | os.PathLike | None = None) -> Path:
    """The VGG16 ImageNet weights: ``path`` if given, else the torch hub cache; never downloads."""
    return find_hub_weights(path, VGG16_FILE, "VGG16 ImageNet", "the perceptual loss (LPIPS)", "perceptual_weights",
                            VGG16_URL)


def _vgg16_features(pretrained: bool = False, **kwargs) -> nn.Module:
    """torchvision's VGG16 conv stack (``.features``) without the classifier, never with downloaded weights."""
    from torchvision.models import vgg

    if pretrained or kwargs.get("weights") is not None:
        raise ValueError("genlab never downloads VGG16 weights; they are loaded from a local file")
    holder = nn.Module()
    holder.features = vgg.make_layers(vgg.cfgs["D"])
    return holder


class PerceptualLoss(nn.Module):
    """LPIPS-VGG distance ``(B,)`` between images ``(B, C, H, W)`` in ``[-1, 1]`` (gray images repeated to RGB).

    Args:
        weights: path of ``vgg16-397923af.pth``; default the torch hub cache (:func:`find_vgg16_weights`).
        random_backbone: keep the randomly initialised VGG16 (tests; the distance is then not perceptual).

    Frozen and in eval mode; gradients flow to the inputs only.
    """

    def __init__(self, weights: str | os.PathLike | None = None, random_backbone: bool = False):
        super().__init__()
        try:
            import lpips
        except ImportError:
            raise ImportError("the perceptual loss needs the lpips package: pip install 'genlab[perceptual]'") from None

        state = None
        if not random_backbone:
            state = torch.load(find_vgg16_weights(weights), map_location="cpu", weights_only=True)
        # pnet_rand: lpips builds the backbone without weights (nothing downloads); pretrained: its own
        # linear layers, which ship inside the package. torchvision's vgg16() would also initialise the
        # 120M-parameter classifier lpips never uses (10 s on a CPU): it gets the conv stack alone.
        with mock.patch.object(lpips.pretrained_networks.tv, "vgg16", _vgg16_features):
            self.lpips = lpips.LPIPS(pretrained=True, net="vgg", pnet_rand=True, verbose=False)
        if state is not None:
            net = self.lpips.net
            # lpips splits torchvision's vgg16.features into slices that keep the original indices
            mapped = {name: state[f"features.{name.split('.', 1)[1]}"] for name in net.state_dict()}
            net.load_state_dict(mapped)
        self.lpips.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        return super().train(False)  # always eval: LPIPS's dropout is for training its linear layers

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.ndim != 4:
            raise ValueError(f"images must be two (B, C, H, W) batches of one shape; got {tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        return self.lpips(x.float(), y.float()).flatten()


def last_layer(decoder: nn.Module) -> Tensor:
    """The weight of the decoder's last conv or linear layer: the ``W`` of VQGAN's adaptive weight."""
    layers = [m for m in decoder.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d))]
    if not layers:
        raise ValueError(f"{type(decoder).__name__} has no conv or linear layer to take the adaptive weight at")
    return layers[-1].weight


def adaptive_weight(nll: Tensor, g_loss: Tensor, layer: Tensor) -> Tensor:
    """VQGAN's ``clamp(‖∇_W nll‖ / (‖∇_W g_loss‖ + 1e-4), 0, 1e4)``, detached (taming ``calculate_adaptive_weight``)."""
    (g_nll,) = torch.autograd.grad(nll, layer, retain_graph=True)
    (g_gan,) = torch.autograd.grad(g_loss, layer, retain_graph=True)
    return (g_nll.float().norm() / (g_gan.float().norm() + ADAPTIVE_EPS)).clamp(0.0, ADAPTIVE_MAX).detach()


@contextlib.contextmanager
def frozen(module: nn.Module):
    """``module``'s parameters do not require gradients inside (its inputs still get them)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class _FirstCall:
    """A critic that remembers its output on the first call (the ``[real, fake]`` batch of every objective)."""

    def __init__(self, critic):
        self.critic, self.output = critic, None

    def __call__(self, x: Tensor) -> Tensor:
        out = self.critic(x)
        if self.output is None:
            self.output = out
        return out


class TokenizerLoss:
    """The tokenizer's loss and its discriminator's step (module docstring).

    Args:
        cfg: a :class:`TokenizerLossConfig` (or a config with its fields).
        image_channels: channels of the images (the discriminator's input).
        seed: seed of the generator behind the penalty critics' random interpolation times.
    """

    def __init__(self, cfg: TokenizerLossConfig, image_channels: int, seed: int = 0):
        self.cfg = cfg
        cfg.validate_losses()
        self.image_channels = check_positive_int("image_channels", image_channels)
        self.perceptual = PerceptualLoss(cfg.perceptual_weights) if cfg.perceptual_weight > 0 else None
        self.objective = None if cfg.adversarial == "none" else build_objective(cfg.adversarial)
        self.lecam = LeCam() if cfg.lecam_weight > 0 else None
        self.gan_start = cfg.disc_start if cfg.gan_start is None else cfg.gan_start
        # the penalty critics' interpolation times: own generator, same on every process, checkpointed
        # through state_dict (a resumed run draws what the uninterrupted one would have)
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        """The generator's state and the LeCam anchors (``accelerator.register_for_checkpointing(loss)``)."""
        return {"generator": self.generator.get_state(), **({"lecam": self.lecam.state_dict()} if self.lecam else {})}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        if self.lecam is not None:
            self.lecam.load_state_dict(state["lecam"])

    @property
    def adversarial(self) -> bool:
        return self.objective is not None

    @property
    def plain(self) -> bool:
        """No perceptual and no adversarial term: the loss is the tokenizer's own."""
        return self.perceptual is None and self.objective is None

    def to(self, device) -> "TokenizerLoss":
        for m in (self.perceptual, self.lecam):
            if m is not None:
                m.to(device)
        return self

    def build_discriminator(self, lr: float) -> tuple[PatchDiscriminator, torch.optim.Optimizer]:
        """The PatchGAN and its Adam optimizer (``disc_lr``, else ``lr``; ``disc_betas``; no weight decay)."""
        from genlab.optim import param_groups

        cfg = self.cfg
        disc = PatchDiscriminator(self.image_channels, cfg.disc_channels, cfg.disc_layers, cfg.disc_norm)
        opt = torch.optim.AdamW(param_groups(disc, 0.0), lr=cfg.disc_lr or lr, betas=tuple(cfg.disc_betas), foreach=True)
        return disc, opt

    def generator_loss(self, step: int, images: Tensor, out, layer: Tensor | None = None,
                       discriminator: nn.Module | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The tokenizer's loss at ``step`` and its extra terms (detached, for logging).

        Args:
            step: the training step (from 1).
            images: the batch ``(B, C, H, W)``.
            out: the tokenizer's :class:`~genlab.tokenizers.TokenizerOutput` on ``images``.
            layer: the decoder's last weight (:func:`last_layer`), for the adaptive weight.
            discriminator: the discriminator, unwrapped (its forward here must not synchronise processes);
                frozen during this call, so the tokenizer's step never gives it gradients.
        """
        if self.plain:
            return out.loss, {}
        cfg, rec, logs = self.cfg, out.reconstruction, {}
        nll = out.losses["rec"]
        if self.perceptual is not None:
            p = self.perceptual(rec, images).mean()
            nll = nll + cfg.perceptual_weight * p
            logs["perceptual"] = p.detach()
        total = nll + out.losses["quantizer"]
        if self.objective is not None and step > self.gan_start:
            if discriminator is None:
                raise ValueError("generator_loss needs the discriminator once the adversarial term is on")
            with frozen(discriminator):
                g_loss, _ = self.objective.generator_loss(discriminator, rec)
            weight = torch.tensor(float(cfg.disc_weight), device=g_loss.device)
            if cfg.adaptive_weight:
                if layer is None:
                    raise ValueError("adaptive_weight needs the decoder's last layer (layer=last_layer(decoder))")
                weight = weight * adaptive_weight(nll, g_loss, layer)
            total = total + weight * g_loss
            logs.update({"gan": g_loss.detach(), "adaptive_weight": weight})
        return total, logs

    def discriminator_step(self, step: int, images: Tensor, reconstruction: Tensor, discriminator, optimizer,
                           backward: Callable[[Tensor], None], scaler=None) -> dict[str, Tensor]:
        """One discriminator update on ``images`` and the **detached** ``reconstruction`` (nothing before
        ``disc_start``); ``backward`` is ``accelerator.backward``. Returns detached statistics."""
        if self.objective is None or step <= self.cfg.disc_start:
            return {}
        optimizer.zero_grad(set_to_none=True)
        critic = _FirstCall(discriminator)
        try:
            extra = {"generator": self.generator} if isinstance(self.objective, PenaltyObjective) else {}
            loss, stats = self.objective.critic_loss(critic, images, reconstruction.detach(), scaler=scaler, **extra)
        except NonFiniteCriticError as err:
            raise FloatingPointError(f"{err} at step {step}; stopping. The last good checkpoint is untouched: lower "
                                     "disc_lr or use --mixed_precision no, then --resume.") from None
        if self.lecam is not None:
            b = len(images)
            reg = self.lecam(patch_scores(critic.output[:b]), patch_scores(critic.output[b:]))
            loss = loss + self.cfg.lecam_weight * reg
            stats = {**stats, "lecam": reg.detach()}
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(f"loss 'disc_loss' became {loss.item()} at step {step}; stopping. The last good "
                                     "checkpoint is untouched: lower disc_lr, then --resume.")
        backward(loss)
        optimizer.step()
        return {"disc_loss": loss.detach(), **{k: v.detach() for k, v in stats.items()}}


__all__ = ["ADVERSARIAL", "PerceptualLoss", "TokenizerLoss", "TokenizerLossConfig", "VGG16_FILE", "adaptive_weight",
           "find_vgg16_weights", "frozen", "last_layer"]
