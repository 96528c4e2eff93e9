"""GPT workbench: GPT-1 and GPT-2 reproduced at laptop scale, for notebooks and GPUs alike."""

from .models.config import PRESETS, GPTConfig
from .models.gpt import GPT, GPTOutput
from .models.params import count_parameters, parameter_breakdown

__all__ = ["GPT", "GPTConfig", "GPTOutput", "PRESETS", "count_parameters", "parameter_breakdown"]
__version__ = "0.1.0"
