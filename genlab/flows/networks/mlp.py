"""A residual MLP velocity field for low-dimensional data (toy2d), ``(B, dim) -> (B, dim)``."""

from __future__ import annotations

from torch import Tensor, nn

from genlab.flows.networks.base import VelocityNet
from genlab.flows.networks.embeddings import LabelEmbedding, TimeEmbedding


class MLPBlock(nn.Module):
    """Pre-norm residual block ``h + W2 silu(W1 norm(h) + c)`` conditioned on ``c (B, width)``."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.cond = nn.Linear(width, width)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        return h + self.fc2(nn.functional.silu(self.fc1(self.norm(h)) + self.cond(c)))


class VelocityMLP(VelocityNet):
    """Velocity ``v(x, t[, label])`` of ``dim``-dimensional points.

    Args:
        dim: data dimension (2 for toy2d).
        width: hidden width.
        depth: residual blocks; each reads the time (and class) embedding.
        num_classes: classes for conditioning (0 = unconditional); index ``num_classes`` is the null class.
    """

    def __init__(self, dim: int = 2, width: int = 256, depth: int = 4, num_classes: int = 0):
        super().__init__()
        self.data_shape, self.num_classes = (dim,), num_classes
        self.net_config = {"net": "mlp", "width": width, "depth": depth}
        self.inp = nn.Linear(dim, width)
        self.time = TimeEmbedding(width)
        self.label = LabelEmbedding(num_classes, width) if num_classes else None
        self.blocks = nn.ModuleList(MLPBlock(width) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        self.check_inputs(x, t, labels)
        c = self.time(t)  # (B, W)
        if self.label is not None:
            c = c + self.label(labels)
        h = self.inp(x)  # (B, W)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)  # (B, dim)
