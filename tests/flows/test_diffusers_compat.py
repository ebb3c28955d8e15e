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
