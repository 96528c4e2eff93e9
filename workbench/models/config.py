"""Model configuration: one dataclass and the named presets of both papers.

GPT-1 and GPT-2 share one architecture that differs in a handful of switches: where the
LayerNorm sits (``norm``), whether a final LayerNorm follows the last block (implied by ``norm``),
and how residual projections are initialised (also implied by ``norm``). Everything else
(width, depth, heads, vocabulary, context) is a size.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..core.checks import POSITIVE_INT, POSITIVE_NUMBER, in_range, one_of

NORMS = ("post", "pre")
ACTIVATIONS = ("gelu_tanh", "gelu")


@dataclass(frozen=True)
class GPTConfig:
    """Sizes and switches of a decoder-only transformer.

    ``norm="post"`` is GPT-1: ``LN(x + sublayer(x))`` and no final LayerNorm.
    ``norm="pre"`` is GPT-2: ``x + sublayer(LN(x))``, a final LayerNorm, and residual output
    projections initialised with std ``0.02 / sqrt(2 * n_layer)``.
    ``activation="gelu_tanh"`` is the tanh approximation both papers' code uses; ``"gelu"`` is the
    exact erf form (Hugging Face GPT-2 configs with ``activation_function="gelu"``).
    """

    n_layer: int = 12
    d_model: int = 768
    n_head: int = 12
    d_ff: int = 3072
    vocab_size: int = 40478
    n_ctx: int = 512
    norm: str = "post"
    activation: str = "gelu_tanh"
    dropout: float = 0.1
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "n_ctx"):
            POSITIVE_INT(getattr(self, name), f"GPTConfig.{name}")
        if self.d_model % self.n_head:
            raise ValueError(f"GPTConfig.d_model={self.d_model} must be divisible by n_head={self.n_head}")
        one_of(NORMS)(self.norm, "GPTConfig.norm")
        one_of(ACTIVATIONS)(self.activation, "GPTConfig.activation")
        in_range(0, 1)(self.dropout, "GPTConfig.dropout")
        POSITIVE_NUMBER(self.layer_norm_eps, "GPTConfig.layer_norm_eps")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def final_norm(self) -> bool:
        """GPT-2 adds a LayerNorm after the last block; GPT-1 (post-LN) does not need one."""
        return self.norm == "pre"

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """A named preset, optionally with some fields replaced (``from_preset("gpt2", dropout=0)``)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)

    def replace(self, **changes: Any) -> GPTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown GPTConfig fields {unknown}; expected a subset of {sorted(fields)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


_GPT2 = dict(norm="pre", activation="gelu_tanh", vocab_size=50257, n_ctx=1024)

PRESETS: dict[str, GPTConfig] = {
    # GPT-1 (Radford et al., 2018): 12 x 768, 12 heads, FFN 3072, 40,478 BPE tokens, 512 positions.
    "gpt1": GPTConfig(),
    # GPT-2 family (Radford et al., 2019), as released.
    "gpt2": GPTConfig(n_layer=12, d_model=768, n_head=12, d_ff=3072, **_GPT2),
    "gpt2-medium": GPTConfig(n_layer=24, d_model=1024, n_head=16, d_ff=4096, **_GPT2),
    "gpt2-large": GPTConfig(n_layer=36, d_model=1280, n_head=20, d_ff=5120, **_GPT2),
    "gpt2-xl": GPTConfig(n_layer=48, d_model=1600, n_head=25, d_ff=6400, **_GPT2),
    # Laptop presets: about 3,700 tokens/s in float32 on a 2-core CPU (5.3M parameters).
    "gpt1-mini": GPTConfig(n_layer=4, d_model=256, n_head=4, d_ff=1024, vocab_size=8192, n_ctx=128),
    "gpt2-mini": GPTConfig(n_layer=4, d_model=256, n_head=4, d_ff=1024, vocab_size=8192, n_ctx=128, norm="pre"),
    # The CPU scale's shared pretraining model: the mini depth at half the width (1.9M parameters).
    # At 600 updates it reaches the mini's validation loss (5.27 against 5.23 nats) in 2/3 of the
    # time, and every fine-tuning run of the layer-transfer sweep costs about half as much.
    "gpt1-slim": GPTConfig(n_layer=4, d_model=128, n_head=4, d_ff=512, vocab_size=8192, n_ctx=128),
    "gpt2-slim": GPTConfig(n_layer=4, d_model=128, n_head=4, d_ff=512, vocab_size=8192, n_ctx=128, norm="pre"),
    # Smaller rungs of a model-size ladder (same 8192-token vocabulary and 128-token window), for
    # zero-shot accuracy against size on the same tokens: nano 0.58M, tiny 1.5M (then slim, mini).
    "gpt1-nano": GPTConfig(n_layer=1, d_model=64, n_head=1, d_ff=256, vocab_size=8192, n_ctx=128),
    "gpt1-tiny": GPTConfig(n_layer=2, d_model=128, n_head=2, d_ff=512, vocab_size=8192, n_ctx=128),
    "gpt2-nano": GPTConfig(n_layer=1, d_model=64, n_head=1, d_ff=256, vocab_size=8192, n_ctx=128, norm="pre"),
    "gpt2-tiny": GPTConfig(n_layer=2, d_model=128, n_head=2, d_ff=512, vocab_size=8192, n_ctx=128, norm="pre"),
    # The CPU scale's size ladder below slim, named by shape (layers x width, heads 32 wide): with slim
    # it spans 1.8 decades of non-embedding parameters (12.8k to 793k), and every rung trains in a
    # third of slim's time or less (their 8192 x width LM heads cost more than their blocks).
    "gpt2-1x32": GPTConfig(n_layer=1, d_model=32, n_head=1, d_ff=128, vocab_size=8192, n_ctx=128, norm="pre"),
    "gpt2-4x32": GPTConfig(n_layer=4, d_model=32, n_head=1, d_ff=128, vocab_size=8192, n_ctx=128, norm="pre"),
    "gpt2-2x64": GPTConfig(n_layer=2, d_model=64, n_head=2, d_ff=256, vocab_size=8192, n_ctx=128, norm="pre"),
    "gpt2-4x64": GPTConfig(n_layer=4, d_model=64, n_head=2, d_ff=256, vocab_size=8192, n_ctx=128, norm="pre"),
    # Test-sized presets: a forward pass in milliseconds.
    "gpt1-micro": GPTConfig(n_layer=2, d_model=64, n_head=2, d_ff=256, vocab_size=512, n_ctx=64),
    "gpt2-micro": GPTConfig(n_layer=2, d_model=64, n_head=2, d_ff=256, vocab_size=512, n_ctx=64, norm="pre"),
}
