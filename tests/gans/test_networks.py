"""Generators and critics: shapes, no batch mixing in critics (the penalty is per sample), the
double backward of the penalty through every critic, and bad configs."""

import pytest
import torch
from torch import nn

from genlab.gans import NetworkConfig, build_critic, build_generator, wgan_gp

CASES = [("mlp", [2]), ("dcgan", [1, 16, 16]), ("resnet", [1, 16, 16]), ("dcgan", [3, 32, 32]), ("resnet", [3, 8, 8])]


@pytest.mark.parametrize("arch, shape", CASES)
def test_shapes_and_output_range(arch, shape):
    cfg = NetworkConfig(arch=arch, data_shape=shape, latent_dim=8, width=8, depth=2)
    G, D = build_generator(cfg), build_critic(cfg)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, *shape) and D(x).shape == (5,)
    if arch != "mlp":
        assert x.abs().max() <= 1  # tanh: images in [-1, 1]


@pytest.mark.parametrize("arch, shape", CASES)
def test_critics_treat_samples_independently_and_support_the_penalty(arch, shape):
    cfg = NetworkConfig(arch=arch, data_shape=shape, latent_dim=8, width=8, depth=2)
    D = build_critic(cfg)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    x = torch.randn(4, *shape)
    out = D(x)
    changed = x.clone()
    changed[1:] = torch.randn(3, *shape)
    torch.testing.assert_close(D(changed)[0], out[0])  # sample 0's score ignores the rest of the batch
    loss, stats = wgan_gp().d_loss(D, x, torch.randn(4, *shape))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "vit"}, "arch='vit' is not supported"),
    ({"arch": "mlp", "data_shape": [1, 16, 16]}, "does not fit arch='mlp'"),
    ({"arch": "dcgan", "data_shape": [1, 12, 12]}, "power of two >= 8"),
    ({"width": 0}, "width=0 must be an integer >= 1"),
    ({"activation": "gelu"}, "activation='gelu' is not supported"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_generator(NetworkConfig(**kwargs))
