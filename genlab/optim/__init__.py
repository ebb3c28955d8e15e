"""genlab.optim: Lion, Tiger and parameter groups tagged by module type."""

from genlab.optim.groups import KINDS, param_groups, parameter_kinds
from genlab.optim.lazy import lazy_rows
from genlab.optim.lion import Lion
from genlab.optim.tiger import Tiger

__all__ = ["KINDS", "Lion", "Tiger", "lazy_rows", "param_groups", "parameter_kinds"]
