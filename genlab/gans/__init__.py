"""GANs: the f-GAN divergence table, likelihood-ratio objectives, WGAN-GP and the ReFlow-derived
critic, hinge, their networks (PatchGAN included), the LeCam regulariser, and one interface over all of them (:func:`build_objective`)."""

from genlab.gans.checks import NonFiniteCriticError
from genlab.gans.fgan import ALIASES, DIVERGENCES, FDivergence
from genlab.gans.lecam import LeCam
from genlab.gans.likelihood_ratio import EXAMPLES, ConstructionReport, LikelihoodRatioGAN, check_construction
from genlab.gans.networks import (CRITIC_KIND, GENERATOR_KIND, Critic, Generator, NetworkConfig, build_critic, build_generator,
                                  load_generator, network_config_dict)
from genlab.gans.objectives import OBJECTIVES, build_objective
from genlab.gans.patch import PatchDiscriminator
from genlab.gans.wgan import GradientPenaltyLoss, penalty_interpolates, proximal_loss, proximal_target, reflow_critic, wgan_gp

__all__ = [
    "ALIASES", "CRITIC_KIND", "ConstructionReport", "Critic", "DIVERGENCES", "EXAMPLES", "FDivergence", "GENERATOR_KIND", "Generator",
    "GradientPenaltyLoss", "LeCam", "LikelihoodRatioGAN", "NetworkConfig", "NonFiniteCriticError", "OBJECTIVES", "PatchDiscriminator",
    "build_critic", "build_generator", "build_objective", "check_construction", "penalty_interpolates", "load_generator", "network_config_dict",
    "proximal_loss", "proximal_target", "reflow_critic", "wgan_gp",
]
