"""A small Diffusion Transformer (Peebles & Xie 2023, "Scalable Diffusion Models with
Transformers") built from genlab's blocks, with 2-D rotary positions instead of fixed sin-cos.

Patchify ``(B, C, H, W) -> (B, T, D)`` with ``T = (H/p)(W/p)``; every block is adaLN-Zero
(DiT Sec. 3.2, Fig. 3): the time + class embedding ``c`` regresses a shift, scale and gate for
the attention and the MLP branch, the gates zero-initialised so each block starts as the identity.
Attention is :class:`genlab.nn.attention.Attention` with :class:`genlab.nn.rope.RotaryEmbedding`
over two axes (row, column) from :func:`genlab.nn.rope.grid_positions` (RoPE-2D, Su 8397).
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from genlab.flows.networks.base import VelocityNet
from genlab.flows.networks.embeddings import LabelEmbedding, TimeEmbedding
from genlab.nn.attention import Attention
from genlab.nn.rope import RotaryEmbedding, grid_positions


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``x (B, T, D) * (1 + scale) + shift`` with per-example ``shift, scale (B, D)``."""
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """adaLN-Zero Transformer block: ``x + g1 * attn(mod(norm(x))) ``, then ``+ g2 * mlp(mod(norm(x)))``."""

    def __init__(self, dim: int, heads: int, rope: RotaryEmbedding, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads, rope=rope, bias=True, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: Tensor, c: Tensor, positions: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, -1)  # (B, D) each
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1), positions)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))  # (B, T, D)


class FinalLayer(nn.Module):
    """adaLN then a linear map of each token to its ``p * p * C`` patch values."""

    def __init__(self, dim: int, patch_size: int, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, patch_size * patch_size * channels)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.ada(c).chunk(2, -1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, T, p*p*C)


class DiT(VelocityNet):
    """Velocity field on images: patchify -> adaLN-Zero blocks with RoPE-2D attention -> unpatchify.

    Args:
        image_size, channels: data shape ``(channels, image_size, image_size)``.
        patch_size: side ``p`` of a patch; ``image_size`` must be divisible by it.
        width: model width ``D``; ``depth`` blocks of ``heads`` heads (``D / heads`` even, for RoPE).
        mlp_ratio: MLP hidden width over ``D``.
        num_classes: classes for conditioning (0 = unconditional); ``num_classes`` is the null class.
    """

    def __init__(self, image_size: int = 16, channels: int = 1, patch_size: int = 2, width: int = 128, depth: int = 4,
                 heads: int = 4, mlp_ratio: float = 4.0, num_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size={image_size} must be divisible by patch_size={patch_size}")
        if width % heads or (width // heads) % 2:
            raise ValueError(f"width={width} must split into heads={heads} of even size (RoPE rotates pairs)")
        self.data_shape, self.num_classes, self.patch_size = (channels, image_size, image_size), num_classes, patch_size
        self.net_config = {"net": "dit", "patch_size": patch_size, "width": width, "depth": depth, "heads": heads,
                           "mlp_ratio": mlp_ratio, "dropout": dropout}
        self.grid = image_size // patch_size
        self.patch = nn.Conv2d(channels, width, patch_size, stride=patch_size)
        self.time = TimeEmbedding(width)
        self.label = LabelEmbedding(num_classes, width) if num_classes else None
        self.rope = RotaryEmbedding(width // heads, n_axes=2)
        self.blocks = nn.ModuleList(DiTBlock(width, heads, self.rope, mlp_ratio, dropout) for _ in range(depth))
        self.final = FinalLayer(width, patch_size, channels)
        self.register_buffer("positions", grid_positions(self.grid, self.grid), persistent=False)  # (2, T)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation, all in one place: Xavier linears, patch embedding as a linear,
        N(0, 0.02) label table and time MLP, and adaLN-Zero (modulations and output zeroed)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch.weight.view(self.patch.weight.shape[0], -1))
        nn.init.zeros_(self.patch.bias)
        if self.label is not None:
            nn.init.normal_(self.label.table.weight, std=0.02)
        for layer in (self.time.mlp[0], self.time.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        for block in self.blocks:  # adaLN-Zero: every residual branch starts closed
            nn.init.zeros_(block.ada[-1].weight)
            nn.init.zeros_(block.ada[-1].bias)
        for layer in (self.final.ada[-1], self.final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        self.check_inputs(x, t, labels)
        c = self.time(t)  # (B, D)
        if self.label is not None:
            c = c + self.label(labels)
        h = rearrange(self.patch(x), "b d gh gw -> b (gh gw) d")  # (B, T, D)
        for block in self.blocks:
            h = block(h, c, self.positions)
        out = self.final(h, c)  # (B, T, p*p*C)
        p = self.patch_size
        return rearrange(out, "b (gh gw) (p q c) -> b c (gh p) (gw q)", gh=self.grid, p=p, q=p)  # (B, C, H, W)


__all__ = ["DiT", "DiTBlock", "FinalLayer", "modulate"]
