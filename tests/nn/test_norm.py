"""RMSNorm: the formula, float32 statistics under bf16 autocast, gainless variant."""

import torch

from genlab.nn import RMSNorm


def test_rmsnorm_formula_and_gain():
    x = torch.randn(3, 5, 8)
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.uniform_()
    expected = x / x.square().mean(-1, keepdim=True).add(1e-6).sqrt() * norm.weight
    torch.testing.assert_close(norm(x), expected)
    assert RMSNorm(8, gain=False).weight is None and not list(RMSNorm(8, gain=False).parameters())


def test_statistics_run_in_float32_under_bf16():
    x = torch.full((2, 256), 3.0).bfloat16()
    x[:, 0] = 300.0  # one large component: a bf16 sum of squares would lose the rest
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = RMSNorm(256)(x)
    assert y.dtype == torch.bfloat16
    ref = x.float() / x.float().square().mean(-1, keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(y.float(), ref, atol=0, rtol=8e-3)  # one bf16 rounding of the output
