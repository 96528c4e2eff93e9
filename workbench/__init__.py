"""GPT workbench: GPT-1 and GPT-2 reproduced at laptop scale, for notebooks and GPUs alike."""

from .config import PRESETS, GPTConfig
from .model import GPT, GPTOutput
from .params import count_parameters, parameter_breakdown

__all__ = ["GPT", "GPTConfig", "GPTOutput", "PRESETS", "count_parameters", "parameter_breakdown"]
__version__ = "0.1.0"
