"""Velocity networks (MLP, diffusers U-Net, RoPE-2D DiT): shapes, conditioning, init, weights, EMA."""

import pytest
import torch

from genlab.flows import flow_matching_loss
from genlab.flows.networks import (
    DiT, FlowNetConfig, VelocityMLP, build_velocity_net, drop_labels, load_velocity_net, timestep_embedding,
    velocity_net_metadata,
)
from genlab.flows.networks.dit import DiTBlock
from genlab.nn.attention import Attention
from genlab.nn.rope import RotaryEmbedding, grid_positions
from genlab.train import save_weights
from genlab.train.ema import build_ema, ema_decay

TINY_DIT = FlowNetConfig(net="dit", width=32, depth=2, heads=2, patch_size=2)


def test_timestep_embedding_is_sinusoidal_in_t_times_1000():
    t = torch.tensor([0.0, 0.25, 1.0])
    emb = timestep_embedding(t, 8)
    freqs = torch.exp(-torch.log(torch.tensor(10_000.0)) * torch.arange(4) / 4)
    assert torch.allclose(emb, torch.cat([(t[:, None] * 1000 * freqs).cos(), (t[:, None] * 1000 * freqs).sin()], 1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert timestep_embedding(t, 8).dtype == torch.float32  # times are never quantised to bf16


def test_dit_is_built_from_genlab_blocks_and_starts_at_zero():
    net = build_velocity_net(TINY_DIT, (1, 8, 8), num_classes=10)
    assert isinstance(net, DiT) and isinstance(net.blocks[0], DiTBlock) and isinstance(net.blocks[0].attn, Attention)
    assert isinstance(net.rope, RotaryEmbedding) and net.rope.n_axes == 2 and net.blocks[0].attn.rope is net.rope
    assert torch.equal(net.positions, grid_positions(4, 4))  # row and column of each 2x2 patch
    x, t, y = torch.randn(3, 1, 8, 8), torch.rand(3), torch.tensor([0, 5, 10])  # 10 is the null class
    assert torch.equal(net(x, t, y), torch.zeros_like(x))  # adaLN-Zero and a zero output layer


def test_dit_attention_sees_2d_positions():
    """Swapping the roles of rows and columns changes a trained DiT's output (RoPE-2D is in use),
    while every block stays a function of the tokens' relative positions (a 2-D shift invariance)."""
    torch.manual_seed(0)
    net = build_velocity_net(TINY_DIT, (1, 8, 8), 0)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    base = net(x, t)
    net.positions = grid_positions(4, 4)[[1, 0]]
    assert not torch.allclose(net(x, t), base, atol=1e-4)
    net.positions = grid_positions(4, 4) + torch.tensor([[3.0], [5.0]])  # shifted origin: RoPE is relative
    assert torch.allclose(net(x, t), base, atol=1e-4)


@pytest.mark.parametrize("cfg, shape", [
    (FlowNetConfig(net="mlp", width=16, depth=2), (2,)),
    (TINY_DIT, (3, 8, 8)),
    (FlowNetConfig(net="unet", width=16, channel_mult=[1, 2], layers_per_block=1, attention_levels=[1]), (1, 8, 8)),
])
def test_every_net_learns_and_checks_its_inputs(cfg, shape):
    torch.manual_seed(0)
    net = build_velocity_net(cfg, shape, num_classes=4)
    x1, y = torch.randn(8, *shape), torch.randint(4, (8,))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(6):
        loss = flow_matching_loss(net, torch.zeros_like(x1), x1, torch.full((8,), 0.5), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in net.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(x1, torch.rand(8), y).shape == x1.shape
    with pytest.raises(ValueError, match="pass labels"):
        net(x1, torch.rand(8))
    with pytest.raises(ValueError, match=r"expects t of shape \(B,\) = \(8,\)"):
        net(x1, torch.rand(8, 1), y)
    with pytest.raises(ValueError, match="expects x of shape"):
        net(torch.randn(8, 5), torch.rand(8), y)
    unconditional = build_velocity_net(cfg, shape, num_classes=0)
    with pytest.raises(ValueError, match="unconditional"):
        unconditional(x1, torch.rand(8), y)


def test_unet_is_diffusers_with_a_null_class():
    cfg = FlowNetConfig(net="unet", width=16, channel_mult=[1, 2], attention_levels=[])
    net = build_velocity_net(cfg, (1, 8, 8), num_classes=10)
    assert type(net.unet).__name__ == "UNet2DModel" and net.unet.class_embedding.num_embeddings == 11
    x, t, y = torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([3, 10])
    assert torch.equal(net(x, t, y), net.unet(x, t * 1000, class_labels=y).sample)


@pytest.mark.parametrize("kwargs, message", [
    ({"net": "mlp"}, "net='mlp' is for points"),
    ({"net": "dit", "patch_size": 3}, "divisible by patch_size=3"),
    ({"net": "dit", "width": 30, "heads": 4}, "width=30 must split into heads=4"),
    ({"net": "unet", "channel_mult": [1, 2, 2, 2]}, "divisible by 2^(len(channel_mult) - 1) = 8"),
    ({"net": "unet", "attention_levels": [3]}, "attention_levels=[3] must index channel_mult"),
    ({"net": "gan"}, "net='gan' is not supported"),
    ({"net": "dit", "depth": 0}, "'depth'=0 must be an integer >= 1"),
])
def test_bad_architectures_fail_clearly(kwargs, message):
    with pytest.raises(ValueError) as info:
        build_velocity_net(FlowNetConfig(**kwargs), (1, 4, 4))
    assert message in str(info.value)


def test_weights_round_trip_and_refuse_other_models(tmp_path):
    net = build_velocity_net(TINY_DIT, (1, 8, 8), num_classes=10)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = tmp_path / "flow.safetensors"
    save_weights(net, path, "FlowVelocityNet", velocity_net_metadata(TINY_DIT, (1, 8, 8), 10))
    loaded = load_velocity_net(str(path))
    x, t, y = torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([1, 2])
    assert torch.equal(loaded(x, t, y), net.eval()(x, t, y))
    save_weights(torch.nn.Linear(2, 2), tmp_path / "other.safetensors", "DigitsClassifier")
    with pytest.raises(ValueError, match="holds a 'DigitsClassifier', not a 'FlowVelocityNet'"):
        load_velocity_net(str(tmp_path / "other.safetensors"))


def test_label_dropout_uses_the_null_class():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(10, (10_000,), generator=g)
    dropped = drop_labels(labels, 10, 0.2, generator=g)
    changed = dropped != labels
    assert (dropped[changed] == 10).all() and changed.float().mean().item() == pytest.approx(0.2, abs=0.02)
    assert drop_labels(labels, 10, 0.0) is labels
    with pytest.raises(ValueError, match="p_uncond=1.5"):
        drop_labels(labels, 10, 1.5)


def test_ema_follows_the_exponential_average_and_round_trips():
    net = VelocityMLP(2, 8, 1)
    ema = build_ema(net, 0.9)
    ema.update_parameters(net)  # the first update copies
    before = [p.detach().clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update_parameters(net)
    d = 2 / 11  # warm-up: min(0.9, (1 + n) / (10 + n)) after n = 1 update
    assert ema_decay(0.9, 1) == d and ema_decay(0.9, 1000) == 0.9
    for b, e, p in zip(before, ema.module.parameters(), net.parameters()):
        assert torch.allclose(e, d * b + (1 - d) * p)
    copy = build_ema(VelocityMLP(2, 8, 1), 0.9)
    copy.load_state_dict(ema.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), ema.state_dict().values()))
    with pytest.raises(ValueError, match="decay=1.0"):
        build_ema(net, 1.0)
