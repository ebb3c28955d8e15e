"""Finite scalar quantization.

Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple", ICLR 2024 (arXiv 2309.15505),
Sec. 3 and App. A.1. Numerics follow the widely used PyTorch port (vector-quantize-pytorch):
codes and indices are bit-identical to it (tests check this against the real package).
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
from torch import Tensor, nn

from genlab.tokenizers.base import QuantizerOutput
from genlab.utils import check_choice, check_finite

EPS = 1e-3
BOUNDS = ["default", "google", "sigmoid", "symmetric"]
# The largest level: the bound's extreme ``+-(L - 1)(1 +- eps) / 2 - offset`` must round to the
# outermost integer level and no further, i.e. ``(L - 1) eps / 2 < 1/2``, so ``L - 1 < 1 / eps``.
# At L = 1001 the float32 bound reaches 500.50003 and rounds to a 1002nd level (a code of 1.002).
# One cap for every bound keeps the index space of all four the same.
MAX_LEVEL = round(1 / EPS)
# The largest codebook: indices are int64, so the last index ``prod(levels) - 1`` must be <= 2**63 - 1
# (every partial sum of the mixed-radix index is then exact too).
MAX_CODEBOOK_SIZE = 2**63


class _BoundRound(torch.autograd.Function):
    """Codes ``round(tanh(z + shift) * half_l - offset) / half_width`` with a straight-through round.

    Fused into one autograd node instead of the port's chain of five: the forward keeps
    ``t = tanh(z + shift)`` and the backward is ``tanh_backward`` (``g (1 - t^2)``, one kernel)
    times ``scale = half_l / half_width``. Every intermediate is written in place into the one
    buffer it came from. The forward value equals the port's ``(x + sg[round(x) - x]) / half_width``
    bit for bit: for ``|x| >= 0.5`` the subtraction is exact (Sterbenz), and below it
    ``round(x) = 0``. Returns ``(codes, rounded)``; ``rounded`` (the integer level minus
    ``half_width``) carries no gradient.

    Inputs are 2-D ``(M, k * w)``: ``k`` vectors of ``w`` channels per row and the constants tiled
    ``k`` times, so every broadcast runs over long contiguous rows (with ``w = 4`` a per-vector
    broadcast is several times slower on CPU).
    """

    @staticmethod
    def forward(ctx, z: Tensor, shift: Tensor, half_l: Tensor, offset: Tensor, half_width: Tensor, scale: Tensor):
        t = torch.add(z, shift).tanh_()
        rounded = torch.mul(t, half_l).sub_(offset).round_()
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(t, scale)
        ctx.mark_non_differentiable(rounded)
        ctx.set_materialize_grads(False)  # no zero-filled gradient for `rounded`
        return rounded / half_width, rounded

    @staticmethod
    def backward(ctx, grad_codes: Tensor | None, grad_rounded: Tensor | None):
        if grad_codes is None:
            return None, None, None, None, None, None
        t, scale = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad_codes, t).mul_(scale), None, None, None, None, None


def _straight_through(u: Tensor, rounded: Tensor) -> Tensor:
    """``rounded`` in the forward pass, identity gradient to ``u``; exactly ``rounded`` in value
    because ``rounded - u`` is exact (Sterbenz) for every mode's ``u >= 0.5`` or ``rounded = 0``."""
    return u + (rounded - u).detach()


class FSQ(nn.Module):
    """Finite scalar quantizer with an implicit codebook of ``prod(levels)`` codes.

    Each channel ``i`` is bounded to ``L_i`` values: ``tanh(z + shift) * half_l - offset`` with
    ``half_l = (L - 1)(1 + eps) / 2``, ``offset = 0.5`` for even ``L`` (else 0),
    ``shift = atanh(offset / half_l)``, then rounded (straight-through) and divided by
    ``L // 2``. Odd ``L`` gives the symmetric grid ``{-1, ..., 1}``; even ``L`` is deliberately
    asymmetric (``L = 8``: ``{-1, -0.75, ..., 0.75}``), as in the paper.

    Other bounds (``bound=``; each is its own codebook over the same index space, never mix
    checkpoints):

    * ``"google"``: the official notebook's ``half_l = (L - 1)(1 - eps) / 2``,
      ``shift = tan(offset / half_l)`` (about 1% of codes differ from the default).
    * ``"sigmoid"``: Su's form (spaces.ac.cn 9826), level ``round((L - 1) sigmoid(z))``, codes
      ``level / (L - 1)`` in ``[0, 1]``.
    * ``"symmetric"``: ``2 / (L - 1) * floor((L - 1)(tanh(z) + 1) / 2 + 0.5) - 1``, ``L`` evenly
      spaced codes from -1 to 1 (arXiv 2411.19842 Sec. 3.2; vector-quantize-pytorch's
      ``preserve_symmetry``, bit-identical to it); the only mode that accepts ``L = 2``.

    The index of a code is mixed-radix with the **first channel least significant**:
    ``index = sum_i level_i * prod(levels[:i])``, with ``level_i in {0, ..., L_i - 1}``.

    Quantization runs in float32 with autocast disabled (bf16 holds integers exactly only up to
    256); indices are ``torch.long``; the output comes back in the caller's dtype. There are no
    learned codebook parameters and no auxiliary loss (``loss`` is zero).

    Args:
        levels: number of levels per code channel, each an integer (Python or NumPy) from 3 to
            ``MAX_LEVEL = 1000`` (paper Table 1: ``[8, 6, 5]``, ``[8, 5, 5, 5]``,
            ``[7, 5, 5, 5, 5]``, ``[8, 8, 8, 6, 5]``, ``[8, 8, 8, 5, 5, 5]``), with
            ``prod(levels) <= 2**63`` (int64 indices). ``L = 2`` gives the shift ``atanh(0.999)``
            and codes {-1, 0}; above 1000 levels the ``eps`` margin lets rounding reach an extra
            level (``(L - 1) eps / 2 >= 1/2``).
        dim: input channels. Defaults to ``len(levels) * num_codebooks``; otherwise linear
            projections map ``dim`` to the code channels and back.
        num_codebooks: split the projected channels into this many independent codes.
        channel_first: input is ``(B, C, *spatial)`` instead of ``(..., C)``.
        bound: ``"default"``, ``"google"``, ``"sigmoid"`` or ``"symmetric"`` (see above).
        check_finite: raise on NaN or Inf input (one reduction; turn off under ``torch.compile``).

    Shapes:
        input ``(..., dim)`` (or ``(B, dim, *spatial)`` with ``channel_first``);
        ``quantized`` has the input's shape; ``indices`` drops the channel axis, with a trailing
        ``num_codebooks`` axis when ``num_codebooks > 1``.

    Example:
        >>> fsq = FSQ(levels=[8, 5, 5, 5])
        >>> quantized, indices, _ = fsq(torch.randn(2, 16, 4))
        >>> fsq.codebook_size, indices.shape
        (1000, torch.Size([2, 16]))
    """

    def __init__(
        self,
        levels: Sequence[int],
        dim: int | None = None,
        num_codebooks: int = 1,
        channel_first: bool = False,
        bound: str = "default",
        check_finite: bool = True,
    ):
        super().__init__()
        check_choice("bound", bound, BOUNDS)
        levels = _check_levels(levels, minimum=2 if bound == "symmetric" else 3)
        self.bound = bound
        if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int) or num_codebooks < 1:
            raise ValueError(f"num_codebooks={num_codebooks!r} must be an integer >= 1")
        self.levels = levels
        self.codebook_dim = len(levels)
        self.num_codebooks = num_codebooks
        self.effective_dim = self.codebook_dim * num_codebooks
        self.dim = self.effective_dim if dim is None else dim
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"dim={dim!r} must be a positive integer")
        self.channel_first = channel_first
        self.check_finite = check_finite
        self.codebook_size = math.prod(levels)

        has_projections = self.dim != self.effective_dim
        self.project_in = nn.Linear(self.dim, self.effective_dim) if has_projections else nn.Identity()
        self.project_out = nn.Linear(self.effective_dim, self.dim) if has_projections else nn.Identity()

        # float32 constants (kept float32 by `_apply` when the module is cast), computed in the
        # port's op order so the bound is bit-identical.
        lv32 = torch.tensor(levels, dtype=torch.int32)
        sign = -1 if bound == "google" else 1
        half_l32 = (lv32 - 1) * (1 + sign * EPS) / 2
        offset32 = torch.where(lv32 % 2 == 0, 0.5, 0.0)
        shift32 = (offset32 / half_l32).tan() if bound == "google" else (offset32 / half_l32).atanh()
        self.register_buffer("_half_l", half_l32, persistent=False)
        self.register_buffer("_offset", offset32, persistent=False)
        self.register_buffer("_shift", shift32, persistent=False)
        self.register_buffer("_half_width", (lv32 // 2).float(), persistent=False)
        self.register_buffer("_levels_minus_1", (lv32 - 1).float(), persistent=False)
        self.register_buffer("_symmetric_step", 2.0 / (lv32 - 1), persistent=False)
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        basis = torch.cumprod(torch.tensor([1] + list(levels[:-1]), dtype=torch.long), dim=0)
        self.register_buffer("_basis", basis, persistent=False)
        self._index_in_float = self.codebook_size <= 2**24
        self.register_buffer("_basis_f", basis.float(), persistent=False)
        if num_codebooks > 1:  # constants tiled over the codebooks: no reshape in the hot path
            for name in _TILED:
                setattr(self, name, getattr(self, name).repeat(num_codebooks))
        # The fast path of the tanh bounds works on rows of `_BLOCK` vectors (see _BoundRound):
        # the constants tiled `_BLOCK` times, and block-diagonal bases that turn a row of levels
        # into `_BLOCK * num_codebooks` indices with one matmul.
        self.register_buffer("_scale", self._half_l / self._half_width, persistent=False)
        for name in _BOUND:
            self.register_buffer(name + "_blk", getattr(self, name).repeat(_BLOCK), persistent=False)
        for k in (1, _BLOCK):
            self.register_buffer(f"_basis_blk{k}", torch.block_diag(*[basis.float()[:, None]] * (k * num_codebooks)),
                                 persistent=False)
        self.register_buffer("_index_offset", (self._half_width[: self.codebook_dim] * basis).sum(), persistent=False)

    def _apply(self, fn, recurse=True):
        # Keep the quantization constants in float32 / int64 when the module is cast to bf16.
        consts = {k: getattr(self, k) for k in _FLOAT32_BUFFERS}
        super()._apply(fn, recurse)
        for k, v in consts.items():
            setattr(self, k, v.to(device=getattr(self, k).device))
        return self

    def extra_repr(self) -> str:
        return (f"levels={self.levels}, dim={self.dim}, num_codebooks={self.num_codebooks}, "
                f"codebook_size={self.codebook_size}, bound={self.bound!r}")

    # ----------------------------------------------------------------------------- layout

    def _to_channel_last(self, z: Tensor) -> Tensor:
        if z.ndim == 0:
            raise ValueError(f"FSQ input must have a channel axis of size dim={self.dim}; got a 0-dim tensor")
        if not self.channel_first:
            return z
        if z.ndim < 2:
            raise ValueError(f"channel_first input must be (B, C, ...); got shape {tuple(z.shape)}")
        return z.movedim(1, -1)

    def _from_channel_last(self, z: Tensor) -> Tensor:
        return z.movedim(-1, 1) if self.channel_first else z

    # ----------------------------------------------------------------------------- forward

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize ``z``; returns ``(quantized, indices, loss)`` (see the class docstring)."""
        if not torch.is_floating_point(z):
            raise TypeError(f"FSQ input must be a floating-point tensor; got dtype {z.dtype}")
        z = self._to_channel_last(z)
        if z.shape[-1] != self.dim:
            layout = "(B, C, ...) with channel_first=True" if self.channel_first else "(..., C)"
            raise ValueError(f"FSQ input has {z.shape[-1]} channels in layout {layout}; expected dim={self.dim}")
        if self.check_finite:
            _check_finite(z)

        z = self.project_in(z)
        orig_dtype = z.dtype
        with torch.autocast(device_type=z.device.type, enabled=False):
            if self.bound in ("default", "google") and self._index_in_float:
                codes, indices = self._bound_round_fast(z.float())
            else:
                codes, digits = self._quantize(z.float())
                # (..., c*d) -> (..., c): mixed-radix index of the integer levels, exact in float32
                # up to 2**24 codes (checked at construction), else in int64.
                digits = digits.unflatten(-1, (self.num_codebooks, self.codebook_dim))
                if self._index_in_float:
                    indices = (digits @ self._basis_f).long()
                else:
                    indices = (digits.long() * self._basis).sum(-1)
            codes = codes.to(orig_dtype)

        quantized = self._from_channel_last(self.project_out(codes))
        if self.num_codebooks == 1:
            indices = indices.squeeze(-1)
        loss = torch.zeros((), device=z.device, dtype=torch.float32)
        return QuantizerOutput(quantized, indices, loss)

    def _bound_round_fast(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """float32 ``z (..., c*d)`` -> codes ``(..., c*d)`` and indices ``(..., c)`` for the tanh bounds.

        Rows of ``_BLOCK`` vectors when their number allows (see :class:`_BoundRound`); the index
        is ``rounded @ basis + sum(half_width * basis)``, integers below ``2**24`` at every partial
        sum, so exact in float32 whatever the summation order.
        """
        shape, width = z.shape, z.shape[-1]
        k = _BLOCK if (z.numel() // width) % _BLOCK == 0 else 1
        consts = [getattr(self, n + "_blk") if k > 1 else getattr(self, n) for n in _BOUND]
        codes, rounded = _BoundRound.apply(z.reshape(-1, k * width), *consts)
        indices = torch.mm(rounded, getattr(self, f"_basis_blk{k}")).add_(self._index_offset).long()
        return codes.view(shape), indices.view(*shape[:-1], self.num_codebooks)

    def _quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """float32 ``z (..., c*d)`` -> codes (straight-through) and integer levels in ``[0, L)``."""
        if self.bound in ("default", "google"):
            width = z.shape[-1]
            codes, rounded = _BoundRound.apply(z.reshape(-1, width), *(getattr(self, n) for n in _BOUND))
            return codes.view(z.shape), (rounded + self._half_width).view(z.shape)
        if self.bound == "sigmoid":
            u = torch.sigmoid(z) * self._levels_minus_1
            digits = u.round()
            return _straight_through(u, digits) / self._levels_minus_1, digits
        u = self._levels_minus_1 * (torch.tanh(z) + 1) / 2.0 + 0.5  # the port's op order
        digits = u.floor()
        return self._symmetric_step * _straight_through(u, digits) - 1.0, digits

    # ----------------------------------------------------------------------------- codes <-> indices

    def codes_to_indices(self, codes: Tensor) -> Tensor:
        """Map normalized codes ``(..., len(levels))`` (channel last) to indices ``(...)``.

        Channel 0 is the least significant digit: ``index = sum_i level_i * prod(levels[:i])``.
        Every code must lie on the grid (within one unit in the last place at 1 of its dtype, at
        least float32's): an off-grid, NaN or out-of-range code raises ``ValueError``, never
        rounds to a neighbour.
        """
        if not torch.is_floating_point(codes):
            raise TypeError(f"codes must be a floating-point tensor; got dtype {codes.dtype}")
        if codes.ndim == 0 or codes.shape[-1] != self.codebook_dim:
            raise ValueError(f"codes must have last dimension len(levels)={self.codebook_dim}; got shape {tuple(codes.shape)}")
        d = self.codebook_dim
        with torch.autocast(device_type=codes.device.type, enabled=False):
            c = codes.float()
            if self.bound in ("default", "google"):
                levels = torch.round(c * self._half_width[:d]) + self._half_width[:d]
            elif self.bound == "sigmoid":
                levels = torch.round(c * self._levels_minus_1[:d])
            else:
                levels = torch.round((c + 1) / self._symmetric_step[:d])
            tol = max(torch.finfo(codes.dtype).eps, torch.finfo(torch.float32).eps)
            outside = ~((levels >= 0) & (levels < self._levels))  # NaN lands here too
            if outside.any():
                raise ValueError(f"codes lie outside the FSQ grid for levels={self.levels}, bound={self.bound!r}")
            levels = levels.long()
            off_grid = (self._level_to_code(levels) - c).abs() > tol
            if off_grid.any():
                bad = c[off_grid][0].item()
                raise ValueError(f"codes lie off the FSQ grid for levels={self.levels}, bound={self.bound!r} (e.g. {bad!r}); "
                                 "expected codes from forward() or indices_to_codes()")
            return (levels * self._basis).sum(-1)

    def indices_to_level_indices(self, indices: Tensor) -> Tensor:
        """Per-channel integer levels ``(..., len(levels))`` in ``[0, L_i)`` for indices ``(...)``."""
        self._check_indices(indices)
        return (indices.long().unsqueeze(-1) // self._basis) % self._levels

    def _indices_to_codes(self, indices: Tensor) -> Tensor:
        return self._level_to_code(self.indices_to_level_indices(indices))

    def _level_to_code(self, levels: Tensor) -> Tensor:
        """Integer levels ``(..., len(levels))`` in ``[0, L_i)`` -> float32 codes (the forward's values)."""
        d = self.codebook_dim
        if self.bound in ("default", "google"):
            return (levels - self._levels // 2).float() / self._half_width[:d]
        if self.bound == "sigmoid":
            return levels.float() / self._levels_minus_1[:d]
        return levels.float() * self._symmetric_step[:d] - 1.0

    def indices_to_codes(self, indices: Tensor, project: bool = True) -> Tensor:
        """Inverse of the forward's indices: the quantized output for ``indices``.

        ``indices`` has the shape the forward returned. The result has the forward's layout
        (channel first if ``channel_first``), passed through ``project_out`` unless
        ``project=False`` (then it has ``len(levels) * num_codebooks`` channels).
        """
        if self.num_codebooks > 1:
            if indices.ndim < 1 or indices.shape[-1] != self.num_codebooks:
                raise ValueError(
                    f"indices must end with num_codebooks={self.num_codebooks}; got shape {tuple(indices.shape)}"
                )
        else:
            indices = indices.unsqueeze(-1)
        codes = self._indices_to_codes(indices).flatten(-2)  # (..., c*d)
        if project:
            codes = self.project_out(codes.to(self._param_dtype()))
        return self._from_channel_last(codes)

    def _param_dtype(self) -> torch.dtype:
        p = next(self.project_out.parameters(), None)
        return p.dtype if p is not None else torch.float32

    def _check_indices(self, indices: Tensor) -> None:
        if indices.dtype.is_floating_point or indices.dtype == torch.bool or indices.is_complex():
            raise TypeError(f"indices must be an integer tensor; got dtype {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() > self.codebook_size - 1):
            raise ValueError(
                f"indices out of range: min {indices.min().item()}, max {indices.max().item()}; "
                f"expected 0 <= index < codebook_size={self.codebook_size}"
            )

    @property
    def implicit_codebook(self) -> Tensor:
        """All ``prod(levels)`` codes, ``(codebook_size, len(levels))``; built on each access."""
        if self.codebook_size > 2**24:
            raise ValueError(
                f"the implicit codebook of levels={self.levels} has {self.codebook_size} codes; "
                "refusing to materialise more than 2**24"
            )
        return self._indices_to_codes(torch.arange(self.codebook_size, device=self._basis.device))


_TILED = ("_half_l", "_offset", "_shift", "_half_width", "_levels_minus_1", "_symmetric_step")
_BOUND = ("_shift", "_half_l", "_offset", "_half_width", "_scale")  # _BoundRound's constants, in its order
_BLOCK = 16  # vectors per row in the fast path
_FLOAT32_BUFFERS = (*_TILED, "_basis_f", "_scale", *(n + "_blk" for n in _BOUND), "_basis_blk1",
                    f"_basis_blk{_BLOCK}", "_index_offset")


def _check_finite(z: Tensor) -> None:
    """Raise on NaN or Inf in ``z``. One reduction; on accelerators the test is queued on the
    device (``torch._assert_async``) instead of stalling the stream with a host synchronisation:
    a non-finite input then fails at the next synchronisation with a device-side assertion."""
    if z.device.type == "cpu":
        check_finite("FSQ input", z)
    else:
        torch._assert_async(torch.isfinite(z.detach().float().sum()), "FSQ input contains NaN or Inf; expected finite values")


def _check_levels(levels: Sequence[int], minimum: int) -> list[int]:
    if isinstance(levels, (str, bytes)) or not hasattr(levels, "__len__") or len(levels) == 0:
        raise ValueError(f"levels={levels!r} must be a non-empty list of integers >= {minimum}")
    out = []
    for level in levels:
        if isinstance(level, torch.Tensor) and level.ndim == 0 and not level.is_floating_point() and level.dtype != torch.bool:
            level = level.item()
        if isinstance(level, bool) or not isinstance(level, numbers.Integral):
            kind = "floats" if isinstance(level, numbers.Real) else type(level).__name__
            raise ValueError(f"levels={list(levels)!r} must hold integers >= {minimum} (Python or NumPy ints), not {kind}")
        level = int(level)
        if level < minimum:
            hint = ("; L = 2 makes the even-level shift atanh(0.999) and codes {-1, 0}: use bound='symmetric'"
                    if level == 2 else "")
            raise ValueError(f"levels={list(levels)!r}: every level must be an integer >= {minimum} (got {level}{hint})")
        if level > MAX_LEVEL:
            raise ValueError(f"levels={list(levels)!r}: every level must be <= MAX_LEVEL={MAX_LEVEL} (got {level}); with "
                             f"eps={EPS} the bound of a larger level rounds to an extra level outside the grid")
        out.append(level)
    size = math.prod(out)
    if size > MAX_CODEBOOK_SIZE:
        raise ValueError(f"levels={out!r} give prod(levels)={size} codes; int64 indices hold at most "
                         f"MAX_CODEBOOK_SIZE=2**63 (use fewer or smaller levels, or num_codebooks)")
    return out
