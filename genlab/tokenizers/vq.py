"""Vector quantization (VQ-VAE) with the remedies that keep a codebook alive.

van den Oord et al., "Neural Discrete Representation Learning", NeurIPS 2017 (arXiv 1711.00937):
nearest-code assignment, straight-through gradient, loss Eq. 3 and the EMA codebook of App. A.1.
Options from later work: k-means initialisation and dead-code reset (vector-quantize-pytorch,
Jukebox-style restarts), low-dimensional l2-normalised codes (ViT-VQGAN, LlamaGen) and the rotation
trick (Fifty et al. 2024, arXiv 2410.06424). Conventions (EMA formula, Laplace smoothing, commitment
loss) follow vector-quantize-pytorch's ``VectorQuantize``; tests compare against the real package.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.tokenizers.base import QuantizerOutput
from genlab.utils import check_choice, check_finite, check_positive_int

NORM_EPS = 1e-6  # l2-normalisation and rotation-trick norms, as in vector-quantize-pytorch


class _RotateToCode(torch.autograd.Function):
    """Rotation trick (Fifty et al. 2024, Sec. 4): forward value ``q``, gradient ``G^T g`` at ``z``.

    ``G = (|q| / |z|) R`` with ``R = I + 2 q~ z~^T - 2 w w^T``, ``z~ = z/|z|``, ``q~ = q/|q|``,
    ``w = (z~ + q~) / |z~ + q~|`` maps ``z`` onto ``q``; everything in ``G`` is treated as a constant.
    Applied with dot products, never a materialised ``d x d`` matrix. For ``z~ = -q~`` (``w = 0``)
    ``R = I - 2 z~ z~^T`` is the reflection that still maps ``z~`` to ``q~``.
    """

    @staticmethod
    def forward(ctx, z: Tensor, q: Tensor) -> Tensor:
        ctx.save_for_backward(z, q)
        return q.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, q = ctx.saved_tensors
        z_norm = z.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
        q_norm = q.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
        u, v = z / z_norm, q / q_norm
        w = F.normalize(u + v, dim=-1, eps=NORM_EPS)
        dot = lambda a, b: (a * b).sum(-1, keepdim=True)  # noqa: E731
        rotated = grad + 2 * u * dot(v, grad) - 2 * w * dot(w, grad)  # R^T grad
        return rotated * (q_norm / z_norm), None


def rotate_to(z: Tensor, q: Tensor) -> Tensor:
    """``q`` in the forward pass, the rotation-trick gradient towards ``z`` (``(..., d)`` each)."""
    return _RotateToCode.apply(z, q.detach())


class VectorQuantizer(nn.Module):
    """Nearest-code vector quantizer with an EMA or gradient-learned codebook.

    Forward (per position, float32 with autocast disabled): ``x = project_in(z)`` (l2-normalised for
    ``distance="cosine"``), ``k = argmin_j ||x - e_j||^2`` (cosine: ``argmax_j x . e_j``), computed
    over blocks of at most ``distance_chunk`` distances so large codebooks never hold the full
    ``(positions, codebook_size)`` matrix; output ``project_out(x + sg[e_k - x])`` (straight-through)
    or the rotation trick.

    Loss (paper Eq. 3, each term the mean over positions and code channels):
    ``codebook_weight * ||sg[x] - e_k||^2 + commitment_weight * ||x - sg[e_k]||^2``.
    With ``codebook_update="ema"`` the codebook term is dropped (the codebook moves by EMA).

    **What learns how.** ``project_in``/``project_out`` and everything upstream get gradients from the
    reconstruction (through the straight-through or rotation estimator) and from the commitment term.
    The codebook either is an ``nn.Parameter`` trained by the codebook term (``"gradient"``) or a
    buffer updated by App. A.1's EMA in every training-mode forward (``"ema"``; under ``no_grad``,
    from the batch's encoder outputs, as vector-quantize-pytorch does)::

        N_i <- decay N_i + (1 - decay) n_i          m_i <- decay m_i + (1 - decay) sum_{k(x)=i} x
        e_i = m_i / N~_i,    N~_i = (N_i + eps) / (sum_j N_j + K eps) * sum_j N_j   (Laplace smoothing)

    ``N`` (``cluster_size``, vectors per batch of all processes) is tracked in both modes and drives
    dead-code reset:
    after the update of each training-mode forward, every code with ``N_i < dead_code_threshold`` is
    replaced by a random encoder output of the current batch, and its moving averages restart from it
    (``N_i = reset_size``, ``m_i = e_i * reset_size``), so the stale ``m_i / N_i`` cannot undo the
    reset. ``kmeans_init`` runs ``kmeans_iters`` Lloyd steps on the first training batch.

    **Random draws** (k-means' initial rows, replacement codes) never touch the global RNG: each
    comes from a ``torch.Generator`` seeded from ``(seed, rank, training_steps, purpose)``, where
    the buffer ``training_steps`` counts training-mode forwards and is saved in the state dict.
    A run resumed from a checkpoint therefore draws exactly the rows the uninterrupted run draws,
    whatever else used the global RNG meanwhile.

    **Several processes.** In training mode, whenever ``torch.distributed`` is initialised with more
    than one process (checked on every step, never cached) and ``sync=True``, the batch counts and
    sums are all-reduced before the EMA update, k-means runs on all processes' vectors, and
    replacement codes are gathered from every process, so every process holds the identical codebook.
    Collectives run only in training-mode forwards, which every process executes; evaluation
    (``eval()``) never communicates, so rank-0-only evaluation cannot hang. Branches that decide
    whether to communicate (k-means done, any dead code) depend only on synchronised state.

    Args:
        dim: input channels.
        codebook_size: number of codes ``K``.
        codebook_dim: code channels; when it differs from ``dim``, linear projections map ``dim`` to
            it and back (low-dimensional codes, as in ViT-VQGAN and LlamaGen).
        codebook_update: ``"ema"`` (App. A.1) or ``"gradient"`` (codebook term of Eq. 3).
        decay: EMA decay ``gamma`` of ``N`` and ``m`` (paper: 0.99).
        eps: Laplace smoothing ``eps`` (1e-5).
        commitment_weight: ``beta`` on the commitment term (paper: 0.25).
        codebook_weight: weight of the codebook term (``"gradient"`` only; default 1).
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iters: Lloyd iterations of the k-means initialisation.
        dead_code_threshold: reset codes whose moving-average count ``N_i`` (vectors per batch) falls
            below this; 0 turns reset off.
        reset_size: ``N_i`` of a reset code (default: ``dead_code_threshold``).
        distance: ``"l2"`` or ``"cosine"`` (l2-normalised inputs and codes).
        rotation_trick: rotation-trick gradient instead of the straight-through estimator.
        sync: synchronise codebook statistics across processes when several train (see above).
        distance_chunk: largest number of ``(position, code)`` distances computed at once.
        channel_first: input is ``(B, C, *spatial)`` instead of ``(..., C)``.
        check_finite: raise on NaN or Inf input, or input so large that its squared distances
            overflow float32 (one reduction).
        seed: seed of the random draws (see above); an integer >= 0.

    Shapes:
        input ``(..., dim)`` (or ``(B, dim, *spatial)`` with ``channel_first``) holding at least one
        vector; ``quantized`` has the input's shape and dtype; ``indices`` (``torch.long``) drops the
        channel axis; ``loss`` is a float32 scalar.

    Example:
        >>> vq = VectorQuantizer(dim=8, codebook_size=64, kmeans_init=True, dead_code_threshold=0.1)
        >>> quantized, indices, loss = vq(torch.randn(2, 64, 8))
        >>> indices.shape, indices.dtype
        (torch.Size([2, 64]), torch.int64)
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int | None = None,
        codebook_update: str = "ema",
        decay: float = 0.99,
        eps: float = 1e-5,
        commitment_weight: float = 0.25,
        codebook_weight: float | None = None,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
        reset_size: float | None = None,
        distance: str = "l2",
        rotation_trick: bool = False,
        sync: bool = True,
        distance_chunk: int = 2**22,
        channel_first: bool = False,
        check_finite: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed={seed!r} must be an integer >= 0")
        self.seed = int(seed)
        self.codebook_size = check_positive_int("codebook_size", codebook_size)
        self.codebook_dim = check_positive_int("codebook_dim", dim if codebook_dim is None else codebook_dim)
        check_choice("codebook_update", codebook_update, ["ema", "gradient"])
        check_choice("distance", distance, ["l2", "cosine"])
        self.codebook_update, self.distance = codebook_update, distance
        self.decay = _check_number("decay", decay, 0.0, 1.0, high_open=True)
        self.eps = _check_number("eps", eps, 0.0, math.inf, low_open=True)
        self.commitment_weight = _check_number("commitment_weight", commitment_weight, 0.0, math.inf)
        if codebook_weight is not None and codebook_update == "ema":
            raise ValueError(f"codebook_weight={codebook_weight!r} has no effect with codebook_update='ema' "
                             "(the EMA moves the codebook); leave it unset or use codebook_update='gradient'")
        self.codebook_weight = _check_number("codebook_weight", 1.0 if codebook_weight is None else codebook_weight,
                                             0.0, math.inf)
        self.kmeans_init = bool(kmeans_init)
        self.kmeans_iters = check_positive_int("kmeans_iters", kmeans_iters)
        self.dead_code_threshold = _check_number("dead_code_threshold", dead_code_threshold, 0.0, math.inf)
        if reset_size is not None and self.dead_code_threshold == 0:
            raise ValueError(f"reset_size={reset_size!r} needs dead_code_threshold > 0 (dead-code reset is off)")
        self.reset_size = _check_number("reset_size", self.dead_code_threshold if reset_size is None else reset_size,
                                        0.0, math.inf, low_open=self.dead_code_threshold > 0)
        self.rotation_trick = bool(rotation_trick)
        self.sync = bool(sync)
        self.distance_chunk = check_positive_int("distance_chunk", distance_chunk)
        self.channel_first = channel_first
        self.check_finite = check_finite

        has_projections = self.codebook_dim != self.dim
        self.project_in = nn.Linear(self.dim, self.codebook_dim) if has_projections else nn.Identity()
        self.project_out = nn.Linear(self.codebook_dim, self.dim) if has_projections else nn.Identity()

        # The reference VQ-VAE initialisation U(-1/K, 1/K); k-means init replaces it on the first batch.
        init = torch.empty(self.codebook_size, self.codebook_dim).uniform_(-1 / self.codebook_size, 1 / self.codebook_size)
        if distance == "cosine":
            init = F.normalize(init, dim=-1, eps=NORM_EPS)
        if codebook_update == "gradient":
            self.codebook = nn.Parameter(init)
        else:
            self.register_buffer("codebook", init)
            self.register_buffer("embed_avg", init.clone())
        self.register_buffer("cluster_size", torch.ones(self.codebook_size))
        self.register_buffer("initted", torch.tensor(not self.kmeans_init))
        self.register_buffer("training_steps", torch.zeros((), dtype=torch.long))  # seeds the random draws

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before the draw counter existed load with the counter at 0.
        state_dict.setdefault(prefix + "training_steps", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    _FLOAT32_BUFFERS = ("cluster_size", "embed_avg")

    def _apply(self, fn, recurse=True):
        # Moving averages stay float32 when the module is cast (e.g. to bf16); so does an EMA codebook.
        names = self._FLOAT32_BUFFERS + (("codebook",) if self.codebook_update == "ema" else ())
        keep = {k: getattr(self, k) for k in names if k in self._buffers}
        super()._apply(fn, recurse)
        for k, v in keep.items():
            self._buffers[k] = v.to(device=self._buffers[k].device)
        return self

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, codebook_size={self.codebook_size}, codebook_dim={self.codebook_dim}, "
                f"codebook_update={self.codebook_update!r}, distance={self.distance!r}, "
                f"kmeans_init={self.kmeans_init}, dead_code_threshold={self.dead_code_threshold}, "
                f"rotation_trick={self.rotation_trick}")

    # ----------------------------------------------------------------------------- forward

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize ``z``; returns ``(quantized, indices, loss)`` (see the class docstring)."""
        if not torch.is_floating_point(z):
            raise TypeError(f"VectorQuantizer input must be a floating-point tensor; got dtype {z.dtype}")
        if z.ndim == 0:
            raise ValueError(f"VectorQuantizer input must have a channel axis of size dim={self.dim}; got a 0-dim tensor")
        if self.channel_first:
            if z.ndim < 2:
                raise ValueError(f"channel_first input must be (B, C, ...); got shape {tuple(z.shape)}")
            z = z.movedim(1, -1)
        if z.shape[-1] != self.dim:
            layout = "(B, C, ...) with channel_first=True" if self.channel_first else "(..., C)"
            raise ValueError(f"VectorQuantizer input has {z.shape[-1]} channels in layout {layout}; expected dim={self.dim}")
        if z.numel() == 0:
            raise ValueError(f"VectorQuantizer input of shape {tuple(z.shape)} holds no vectors; expected at least one "
                             "(the loss and the codebook statistics are averages over vectors)")
        if self.check_finite:
            _check_input(z)

        z = self.project_in(z)  # (..., codebook_dim), in the module's dtype
        with torch.autocast(device_type=z.device.type, enabled=False):
            x = z.float()
            if self.distance == "cosine":
                x = F.normalize(x, dim=-1, eps=NORM_EPS)
            flat = x.reshape(-1, self.codebook_dim)  # (N, d)
            sync = self.training and self._distributed()
            if self.training and not self.initted:
                self._kmeans_init(flat.detach(), sync)
            codebook = self._codes()  # (K, d) float32; carries gradients in "gradient" mode
            indices = self.nearest(flat.detach(), codebook.detach())  # (N,) long
            q = F.embedding(indices, codebook)  # (N, d)

            loss = self.commitment_weight * F.mse_loss(flat, q.detach())
            if self.codebook_update == "gradient":
                loss = loss + self.codebook_weight * F.mse_loss(q, flat.detach())
            if self.training:
                self._update(flat.detach(), indices, sync)
                if self.dead_code_threshold > 0:
                    self._reset_dead_codes(flat.detach(), sync)
                self.training_steps.add_(1)

            if self.rotation_trick and flat.requires_grad:
                out = rotate_to(flat, q)
            elif flat.requires_grad:
                out = flat + (q - flat).detach()  # straight-through (vector-quantize-pytorch's op order)
            else:
                out = q.detach()
            out = out.reshape(x.shape).to(z.dtype)

        quantized = self.project_out(out)
        if self.channel_first:
            quantized = quantized.movedim(-1, 1)
        return QuantizerOutput(quantized, indices.reshape(x.shape[:-1]), loss)

    def _codes(self) -> Tensor:
        codes = self.codebook.float()
        if self.codebook_update == "gradient" and self.distance == "cosine":
            # The EMA codebook is stored normalised. The clone keeps the tensor that normalize saves
            # for backward apart from the parameter, which a dead-code reset rewrites in this forward.
            codes = F.normalize(codes.clone(), dim=-1, eps=NORM_EPS)
        return codes

    @torch.no_grad()
    def nearest(self, x: Tensor, codebook: Tensor | None = None) -> Tensor:
        """Index ``(N,)`` (long) of the nearest code for each row of ``x`` ``(N, codebook_dim)``.

        l2: ``argmin_j ||e_j||^2 - 2 x . e_j`` (``||x||^2`` is the same for every code); cosine:
        ``argmax_j x . e_j``. Blocks of rows keep at most ``distance_chunk`` distances in memory.
        """
        codebook = self._codes() if codebook is None else codebook
        x = x.float()
        n, k = x.shape[0], codebook.shape[0]
        out = torch.empty(n, dtype=torch.long, device=x.device)
        rows = max(1, self.distance_chunk // k)
        codes_t = codebook.t()
        if self.distance == "cosine":
            for s in range(0, n, rows):
                torch.argmax(x[s:s + rows] @ codes_t, dim=1, out=out[s:s + rows])
        else:
            sq = codebook.square().sum(1)  # (K,)
            for s in range(0, n, rows):
                torch.argmin(torch.addmm(sq, x[s:s + rows], codes_t, alpha=-2), dim=1, out=out[s:s + rows])
        return out

    # ----------------------------------------------------------------------------- training updates

    def _distributed(self) -> bool:
        return self.sync and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1

    @torch.no_grad()
    def _update(self, x: Tensor, indices: Tensor, sync: bool) -> None:
        """Moving averages ``N``, ``m`` and the EMA codebook from one batch's assignments."""
        counts = torch.bincount(indices, minlength=self.codebook_size).float()  # (K,)
        sums = None
        if self.codebook_update == "ema":
            sums = torch.zeros_like(self.embed_avg).index_add_(0, indices, x)  # (K, d)
        if sync:
            _all_reduce(counts, sums)
        self.cluster_size.lerp_(counts, 1 - self.decay)
        if sums is not None:
            self.embed_avg.lerp_(sums, 1 - self.decay)
            self.codebook.copy_(self._ema_codes())

    def _ema_codes(self) -> Tensor:
        n = self.cluster_size
        total = n.sum()
        smoothed = (n + self.eps) / (total + self.codebook_size * self.eps) * total
        codes = self.embed_avg / smoothed.unsqueeze(1)
        return F.normalize(codes, dim=-1, eps=NORM_EPS) if self.distance == "cosine" else codes

    @torch.no_grad()
    def _reset_dead_codes(self, x: Tensor, sync: bool) -> None:
        # The codebook's rows are rewritten in place: the forward's autograd graph saved none of them
        # (embedding saves indices only, and the cosine path normalises a clone).
        dead = self.cluster_size < self.dead_code_threshold  # identical on every process (synced counts)
        n_dead = int(dead.sum())
        self.dead_codes = n_dead
        if n_dead == 0:
            return
        new = _sample_rows(x, n_dead, sync, self._generator(x.device, "reset"))  # (n_dead, d), the same on every process
        self.codebook.data[dead] = new.to(self.codebook.dtype)
        self.cluster_size[dead] = self.reset_size
        if self.codebook_update == "ema":
            self.embed_avg[dead] = new * self.reset_size

    dead_codes: int = 0  # codes found dead (and reset) by the last training step; 0 when reset is off

    def _generator(self, device: torch.device, purpose: str) -> torch.Generator:
        """A generator on ``device`` seeded from ``(seed, rank, training_steps, purpose)`` only."""
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        key = f"{self.seed},{rank},{int(self.training_steps)},{purpose}".encode()
        return torch.Generator(device=device).manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1)

    @torch.no_grad()
    def _kmeans_init(self, x: Tensor, sync: bool) -> None:
        """Lloyd's k-means on the batch ``x`` ``(N, d)`` (all processes' batches when ``sync``)."""
        k = self.codebook_size
        if x.shape[0] < k:
            warnings.warn(f"k-means initialisation got {x.shape[0]} vectors for codebook_size={k}: some initial "
                          "codes repeat (dead-code reset replaces them once they go unused)", stacklevel=3)
        means = _sample_rows(x, k, sync, self._generator(x.device, "kmeans"))
        counts = torch.zeros(k, device=x.device)
        for _ in range(self.kmeans_iters):
            idx = self.nearest(x, means)
            counts = torch.bincount(idx, minlength=k).float()
            sums = torch.zeros_like(means).index_add_(0, idx, x)
            if sync:
                _all_reduce(counts, sums)
            new = sums / counts.clamp_min(1).unsqueeze(1)
            if self.distance == "cosine":
                new = F.normalize(new, dim=-1, eps=NORM_EPS)
            means = torch.where(counts.unsqueeze(1) > 0, new, means)  # empty clusters keep their mean
        self.codebook.data.copy_(means.to(self.codebook.dtype))
        self.cluster_size.copy_(counts)
        if self.codebook_update == "ema":
            total = counts.sum()
            smoothed = (counts + self.eps) / (total + k * self.eps) * total
            self.embed_avg.copy_(means * smoothed.unsqueeze(1))  # so that m / N~ reproduces the means
        self.initted.fill_(True)

    # ----------------------------------------------------------------------------- indices -> codes

    def indices_to_codes(self, indices: Tensor, project: bool = True) -> Tensor:
        """The quantized output for ``indices`` (the forward's index shape), in the forward's layout.

        Passed through ``project_out`` unless ``project=False`` (then ``codebook_dim`` channels).
        """
        if indices.dtype.is_floating_point or indices.dtype == torch.bool or indices.is_complex():
            raise TypeError(f"indices must be an integer tensor; got dtype {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.codebook_size):
            raise ValueError(f"indices out of range: min {indices.min().item()}, max {indices.max().item()}; "
                             f"expected 0 <= index < codebook_size={self.codebook_size}")
        codes = F.embedding(indices.long(), self._codes().detach())  # (..., codebook_dim)
        if project:
            weight = next(self.project_out.parameters(), None)
            codes = self.project_out(codes.to(weight.dtype if weight is not None else codes.dtype))
        return codes.movedim(-1, 1) if self.channel_first else codes


def _check_number(name: str, value, low: float, high: float, low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == math.inf else ']'}"
        raise ValueError(f"{name}={value!r} must lie in {interval}")
    return float(value)


def _all_reduce(*tensors: Tensor | None) -> None:
    for t in tensors:
        if t is not None:
            dist.all_reduce(t)


def _check_input(z: Tensor) -> None:
    """NaN, Inf, or values whose squares overflow float32 (the distances and the loss), in one reduction."""
    if torch.isfinite(z.detach().float().square().sum()):
        return
    check_finite("VectorQuantizer input", z)
    raise ValueError(f"VectorQuantizer input is too large for float32 distances: its sum of squares overflows "
                     f"(largest |value| {z.detach().abs().max().item():.3g}); expected values well below 1e19 "
                     "(normalise the encoder output)")


def _sample_rows(x: Tensor, n: int, sync: bool, generator: torch.Generator) -> Tensor:
    """``n`` random rows of ``x`` (without replacement when it has enough), identical on every process.

    With ``sync`` each process draws ``n`` rows from its own batch and the results are all-gathered;
    row ``i`` comes from process ``i mod world_size``, so every process builds the same sample from
    every process's data.
    """
    m = x.shape[0]
    if m >= n:
        pick = torch.randperm(m, device=x.device, generator=generator)[:n]
    else:
        pick = torch.randint(m, (n,), device=x.device, generator=generator)
    rows = x[pick]
    if not sync:
        return rows
    world = dist.get_world_size()
    gathered = [torch.empty_like(rows) for _ in range(world)]
    dist.all_gather(gathered, rows.contiguous())
    i = torch.arange(n, device=x.device)
    return torch.stack(gathered)[i % world, i]


__all__ = ["VectorQuantizer", "rotate_to"]
