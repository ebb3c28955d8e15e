"""Rectified flow / flow matching: paths, ODE samplers, guidance, reflow and distillation.

Time convention: ``t = 0`` is the source (noise), ``t = 1`` is data; ``x_t = (1 - t) x_0 + t x_1``
and the velocity target is ``x_1 - x_0`` (Liu, Gong, Liu 2022, arXiv 2209.03003).

    from genlab.flows import flow_matching_loss, sample, sample_times
    t = sample_times(len(x1), "uniform")
    loss = flow_matching_loss(model, torch.randn_like(x1), x1, t)
    out = sample(model, torch.randn(64, 2), steps=10, method="heun")   # out.samples, out.nfe
"""

from genlab.flows.diffusers_compat import (
    as_diffusers_model,
    export_to_diffusers,
    from_diffusers_model,
    from_diffusers_sigma,
    from_diffusers_timestep,
    from_diffusers_velocity,
    time_grid_from_scheduler,
    to_diffusers_sigma,
    to_diffusers_timestep,
    to_diffusers_velocity,
)
from genlab.flows.guidance import guidance_scale_from_w, guided_velocity, w_from_guidance_scale
from genlab.flows.paths import (
    TIME_DISTRIBUTIONS,
    expand_time,
    flip_time,
    flow_matching_loss,
    interpolate,
    sample_times,
    shift_time,
    velocity_target,
)
from genlab.flows.reflow import CouplingDataset, generate_couplings, straightness
from genlab.flows.samplers import METHODS, FlowSamples, VelocityField, sample, uniform_grid

__all__ = [
    "CouplingDataset", "FlowSamples", "METHODS", "TIME_DISTRIBUTIONS", "VelocityField", "as_diffusers_model",
    "expand_time", "export_to_diffusers", "flip_time", "flow_matching_loss", "from_diffusers_model", "from_diffusers_sigma",
    "from_diffusers_timestep", "from_diffusers_velocity", "generate_couplings", "guidance_scale_from_w",
    "guided_velocity", "interpolate", "sample", "sample_times", "shift_time", "straightness",
    "time_grid_from_scheduler", "to_diffusers_sigma", "to_diffusers_timestep", "to_diffusers_velocity",
    "uniform_grid", "velocity_target", "w_from_guidance_scale",
]
