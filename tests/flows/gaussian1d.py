"""The closed-form 1-D problem of the flows spec (section 7): p_0 = N(0, 1), p_1 = N(mu, s^2).

With the independent coupling the exact marginal velocity is
``v*(x, t) = mu + (t s^2 - (1 - t)) / ((1 - t)^2 + t^2 s^2) (x - t mu)`` and the flow map is
``x_0 -> mu + s x_0``; the reflowed (2-rectified) field is
``v(x, t) = mu + (s - 1)(x - t mu) / (1 - t + t s)``, whose trajectories are straight.
"""

import torch

MU, S = 3.0, 2.0
X0 = [-1.0, 0.0, 1.0]
TARGET = [1.0, 3.0, 5.0]


def v_star(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact 1-rectified velocity; ``x (B, 1)``, ``t (B,)``."""
    t = t.to(x.dtype)[:, None]
    return MU + (t * S * S - (1 - t)) / ((1 - t) ** 2 + t * t * S * S) * (x - t * MU)


def v_reflow(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact 2-rectified velocity of the deterministic coupling ``x_1 = mu + s x_0``."""
    t = t.to(x.dtype)[:, None]
    return MU + (S - 1) * (x - t * MU) / (1 - t + t * S)


def x0(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(X0, dtype=dtype)[:, None]
