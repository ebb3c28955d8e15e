"""Training harness shared by the scripts: configs, Accelerate run folder, checkpoints, grids."""

from genlab.train.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint, verify_checkpoint
from genlab.train.config import TrainConfig, config_to_dict, dump_config, load_config_file, parse_config
from genlab.images import save_figure, save_grid, save_scatter
from genlab.io import atomic_path, load_weights, read_weights_metadata, save_weights, write_text_atomic
from genlab.train.optim import build_optimizer
from genlab.train.run import Run, check_finite_loss, lr_lambda

__all__ = [
    "CheckpointError", "Run", "TrainConfig", "atomic_path", "build_optimizer", "check_finite_loss",
    "config_to_dict", "dump_config", "list_checkpoints", "load_checkpoint", "load_config_file",
    "load_weights", "lr_lambda", "parse_config", "read_weights_metadata", "save_checkpoint",
    "save_figure", "save_grid", "save_scatter", "save_weights", "verify_checkpoint", "write_text_atomic",
]
