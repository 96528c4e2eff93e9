"""The bottom layer: atomic files, paths, devices, shared checks, the options schema and timing."""

from .checks import NON_NEGATIVE_INT, POSITIVE_INT, Check, check_fields, in_range, one_of, optional, sequence_of
from .device import autocast, resolve_device, resolve_precision
from .options import add_arguments, apply_overrides, from_dict, option, overrides_from_args, to_dict
from .paths import figures_dir
from .timing import timed

__all__ = [
    "NON_NEGATIVE_INT",
    "POSITIVE_INT",
    "Check",
    "add_arguments",
    "apply_overrides",
    "autocast",
    "check_fields",
    "in_range",
    "one_of",
    "optional",
    "sequence_of",
    "figures_dir",
    "from_dict",
    "option",
    "overrides_from_args",
    "resolve_device",
    "resolve_precision",
    "timed",
    "to_dict",
]
