"""What every velocity network shares: the call signature and its input checks.

A velocity network is called as ``net(x, t)`` or, when class-conditional, ``net(x, t, labels)``:
``x (B, *data_shape)``, genlab times ``t (B,)`` (0 = source, 1 = data), ``labels (B,)`` long in
``[0, num_classes]`` where ``num_classes`` is the null class of classifier-free guidance. It
returns the velocity ``(B, *data_shape)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from genlab.io import PretrainedMixin, known_fields

WEIGHTS_KIND = "FlowVelocityNet"


class VelocityNet(PretrainedMixin, nn.Module):
    """Base class: ``data_shape``, ``num_classes`` (0 = unconditional) and :meth:`check_inputs`.

    ``net.save_pretrained(folder)`` / ``VelocityNet.from_pretrained(folder_or_file)`` keep any
    velocity network (the stored config names the architecture); a subclass's ``from_pretrained``
    also checks that the file holds that architecture. Subclasses record the
    :class:`~genlab.flows.networks.FlowNetConfig` fields that rebuild them in ``self.net_config``.
    """

    weights_kind = WEIGHTS_KIND
    data_shape: tuple[int, ...]
    num_classes: int
    net_config: dict

    def pretrained_config(self) -> dict:
        """FlowNetConfig fields plus ``data_shape`` and ``num_classes``: what :meth:`from_config` rebuilds from."""
        if not hasattr(self, "net_config"):
            raise TypeError(f"{type(self).__name__} sets no net_config, so save_pretrained cannot rebuild it; "
                                      "save its state_dict with genlab.io.save_weights instead")
        return {**self.net_config, "data_shape": list(self.data_shape), "num_classes": self.num_classes}

    @classmethod
    def from_config(cls, config: dict) -> "VelocityNet":
        """A fresh network from a stored config (``data_shape``, ``num_classes`` and FlowNetConfig fields)."""
        from genlab.flows.networks import FlowNetConfig, build_velocity_net

        return build_velocity_net(FlowNetConfig(**known_fields(config, FlowNetConfig)), config["data_shape"],
                                  config.get("num_classes", 0))

    @property
    def null_label(self) -> int | None:
        """Index of the unconditional class (``num_classes``), or None for an unconditional net."""
        return self.num_classes if self.num_classes else None

    def check_inputs(self, x: Tensor, t: Tensor, labels: Tensor | None) -> None:
        name = type(self).__name__
        if tuple(x.shape[1:]) != tuple(self.data_shape) or x.ndim != len(self.data_shape) + 1:
            raise ValueError(f"{name} expects x of shape (B, {', '.join(map(str, self.data_shape))}); got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"{name} expects t of shape (B,) = ({x.shape[0]},); got {tuple(t.shape)}")
        if self.num_classes and labels is None:
            raise ValueError(f"{name} is class-conditional (num_classes={self.num_classes}): pass labels (B,); "
                             f"the unconditional (null) class is {self.num_classes}")
        if not self.num_classes and labels is not None:
            raise ValueError(f"{name} is unconditional (num_classes=0); got labels")
        if labels is not None and (labels.shape != (x.shape[0],) or labels.is_floating_point()):
            raise ValueError(f"labels must be integers of shape (B,) = ({x.shape[0]},); got {labels.dtype} {tuple(labels.shape)}")
