"""genlab <-> diffusers FlowMatchEulerDiscreteScheduler: converters and agreement with the real scheduler."""

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from genlab.flows import (
    as_diffusers_model, from_diffusers_model, from_diffusers_sigma, from_diffusers_timestep, from_diffusers_velocity,
    interpolate, sample, time_grid_from_scheduler, to_diffusers_sigma, to_diffusers_timestep, to_diffusers_velocity,
)
from tests.flows.gaussian1d import v_star, x0


def diffusers_loop(scheduler, model, x, steps=None):
    for i, timestep in enumerate(scheduler.timesteps[:steps]):
        x = scheduler.step(model(x, timestep), timestep, x).prev_sample
    return x


def test_converters_are_involutions():
    v, t = torch.randn(4, 3), torch.rand(7)
    assert torch.equal(from_diffusers_velocity(to_diffusers_velocity(v)), v)
    assert torch.allclose(from_diffusers_timestep(to_diffusers_timestep(t)), t)
    assert torch.allclose(to_diffusers_timestep(from_diffusers_timestep(t * 1000)), t * 1000)
    assert torch.equal(from_diffusers_sigma(to_diffusers_sigma(t)), t)
    assert to_diffusers_timestep(torch.tensor([0.0, 1.0])).tolist() == [1000.0, 0.0]  # noise is timestep 1000
    model = from_diffusers_model(as_diffusers_model(v_star))
    x, tt = x0(torch.float32), torch.rand(3)
    assert torch.allclose(model(x, tt), v_star(x, tt), atol=1e-5)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_one_euler_step_agrees_with_the_scheduler(shift):
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(8)
    grid = time_grid_from_scheduler(scheduler)
    assert len(grid) == 9 and grid[0] == 0 and grid[-1] == 1
    x = x0(torch.float32)
    ours = sample(v_star, x, method="euler", time_grid=grid[:2]).samples
    theirs = diffusers_loop(scheduler, as_diffusers_model(v_star), x, steps=1)
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("shift, steps", [(1.0, 10), (3.0, 20)])
def test_whole_sampling_loop_agrees_with_the_scheduler(shift, steps):
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(steps)
    x = x0(torch.float32)
    out = sample(v_star, x, method="euler", time_grid=time_grid_from_scheduler(scheduler))
    assert out.nfe == steps  # diffusers' N model calls, on a non-uniform grid
    assert torch.allclose(out.samples, diffusers_loop(scheduler, as_diffusers_model(v_star), x), atol=1e-6)


def test_scale_noise_is_the_genlab_path():
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(10)
    noise, data = torch.randn(3, 2), torch.randn(3, 2)
    for timestep in scheduler.timesteps[[0, 4, 9]]:
        t = from_diffusers_timestep(timestep)
        ours = interpolate(noise, data, t.expand(3))
        theirs = scheduler.scale_noise(data, timestep[None], noise)
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_grid_needs_a_schedule():
    with pytest.raises(ValueError, match="set_timesteps"):
        time_grid_from_scheduler(object())


def _briefly_trained_unet(num_classes=10):
    from genlab.data.digits import load_digits_tensors
    from genlab.flows import flow_matching_loss, sample_times
    from genlab.flows.networks import FlowNetConfig, build_velocity_net

    torch.manual_seed(0)
    images, labels = load_digits_tensors("train", image_size=8)
    net = build_velocity_net(FlowNetConfig(net="unet", width=32, channel_mult=[1, 1]), (1, 8, 8), num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(15):
        i = torch.randint(0, len(images), (32,), generator=g)
        x1, y = images[i], labels[i] if num_classes else None
        loss = flow_matching_loss(net, torch.randn(x1.shape, generator=g), x1, sample_times(32, generator=g), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@pytest.mark.parametrize("num_classes", [10, 0])
def test_exported_unet_samples_like_genlab_euler_in_a_plain_diffusers_loop(num_classes):
    from genlab.flows import export_to_diffusers

    net = _briefly_trained_unet(num_classes)
    unet = export_to_diffusers(net)
    assert type(unet).__name__ == "UNet2DModel"
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(12)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6) if num_classes else None
    with torch.no_grad():
        ours = sample(net, x, method="euler", time_grid=time_grid_from_scheduler(scheduler), labels=y).samples
        theirs = x
        for timestep in scheduler.timesteps:  # the raw diffusers model, no conversion anywhere
            theirs = scheduler.step(unet(theirs, timestep, class_labels=y).sample, timestep, theirs).prev_sample
        timestep = scheduler.timesteps[3]  # the inner model follows genlab's conventions: never use it raw
        raw, exported = net.unet(x, timestep, class_labels=y).sample, unet(x, timestep, class_labels=y).sample
    assert (ours - theirs).abs().max() < 1e-5
    assert ours.abs().max() > 0.5 and (raw - exported).abs().max() > 0.1


def test_export_refuses_networks_it_cannot_rewrite():
    from genlab.flows import export_to_diffusers
    from genlab.flows.networks import VelocityMLP

    with pytest.raises(TypeError, match="as_diffusers_model"):
        export_to_diffusers(VelocityMLP(2, 8, 1))
