"""The LSTM language model GPT-1 compares against in Figure 2 (right).

Same tokens, same Trainer, same scoring interface as :class:`workbench.models.gpt.GPT`: ``forward(idx,
targets)`` returns a :class:`~workbench.models.gpt.GPTOutput` with logits and the mean cross-entropy.
The input embedding is tied to the output layer; a linear projection maps the LSTM's hidden state
back to the embedding width so the tie holds for any hidden size. (A separate layer rather than
``nn.LSTM(proj_size=...)``, which has no fast oneDNN kernel on CPU.)

With ``norm=True`` a LayerNorm sits at each end of the tied embedding: on the embeddings read into the
LSTM and on the projected state read by the tied head (GPT-2's final LayerNorm plays the second role).
Without them the LSTM stays on the unigram plateau at the CPU recipe: a tied embedding initialised with
std 0.02 is too small an input for the gates and, read from an unnormalised state, too weak an output.
Measured (cpu recipe, 300 updates, validation loss; unigram entropy of the train split 6.80 nats): no
norm 6.757, output norm only 6.741, input norm only 6.757, input scaled by sqrt(d_model) 6.758, both
norms 5.557 (an untied head with a bias on top of both: 5.462, with 55% more parameters).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..core.checks import POSITIVE_INT, in_range
from ..core.device import cpu_kernels_pinned
from .config import GPTConfig
from .gpt import LOSS_ALONE_NEEDS_TARGETS, GPTOutput, check_targets, lm_head_and_loss
from .params import count_parameters


@dataclass(frozen=True)
class LSTMConfig:
    vocab_size: int = 8192
    d_model: int = 256  # embedding width (tied with the output layer)
    hidden: int = 384  # LSTM cell width, projected back to d_model
    n_layer: int = 2
    n_ctx: int = 128  # training window; the scorer cuts longer contexts to this
    dropout: float = 0.1
    norm: bool = True  # LayerNorm on the input embeddings and before the tied head (see the module docstring)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "hidden", "n_layer", "n_ctx"):
            POSITIVE_INT(getattr(self, name), f"LSTMConfig.{name}")
        in_range(0, 1)(self.dropout, "LSTMConfig.dropout")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def lstm_parameters(config: LSTMConfig) -> int:
    """Exact parameter count: tied embedding, four gates per layer (two biases each), the projection,
    and the two LayerNorms' gains and biases."""
    d, h = config.d_model, config.hidden
    first = 4 * h * (d + h) + 8 * h
    later = 4 * h * (h + h) + 8 * h
    norms = 4 * d if config.norm else 0
    return config.vocab_size * d + first + (config.n_layer - 1) * later + h * d + norms


def matching_lstm_config(gpt: GPTConfig, hidden: int | None = None, norm: bool = True) -> LSTMConfig:
    """An LSTM on the same vocabulary and embedding width whose depth brings its size closest to ``gpt``'s."""
    target = count_parameters(gpt)
    hidden = hidden or gpt.d_model * 3 // 2
    best = min(
        (LSTMConfig(gpt.vocab_size, gpt.d_model, hidden, n, gpt.n_ctx, gpt.dropout, norm) for n in range(1, 9)),
        key=lambda c: abs(lstm_parameters(c) - target),
    )
    return best


class LSTMLanguageModel(nn.Module):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.d_model,
            config.hidden,
            num_layers=config.n_layer,
            batch_first=True,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
        )
        self.proj = nn.Linear(config.hidden, config.d_model, bias=False)
        self.ln_in = nn.LayerNorm(config.d_model) if config.norm else nn.Identity()
        self.ln_out = nn.LayerNorm(config.d_model) if config.norm else nn.Identity()
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        nn.init.normal_(self.wte.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """The final state read by the tied head, ``[batch, time, d_model]``: the LSTM's output,
        projected to the embedding width and normalised (the role of GPT's ``transformer(idx)[0]``).

        Position ``t`` has read tokens ``0..t`` only, left to right.
        """
        return self.step(idx)[0]

    def step(
        self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`hidden_states` of ``idx`` read after ``state``, and the state after it: the LSTM's
        ``(h, c)``, each ``[n_layer, batch, hidden]`` (None: nothing read yet). Decoding carries it from
        token to token, as a GPT carries its key/value cache."""
        if idx.dim() != 2:
            raise ValueError(f"expected token ids [batch, time], got shape {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.config.vocab_size):
            raise ValueError(
                f"token ids must be in [0, {self.config.vocab_size}), got {int(idx.min())}..{int(idx.max())}"
            )
        if idx.device.type == "cpu" and torch.is_autocast_enabled("cpu") and cpu_kernels_pinned():
            raise ValueError(
                "the LSTM cannot run under CPU autocast while the CPU kernels are pinned to AVX2 (oneDNN has no "
                "bf16 LSTM there): use precision='fp32', or set WORKBENCH_NATIVE_CPU_KERNELS=1 before importing "
                "workbench"
            )
        hidden, state = self.lstm(self.drop(self.ln_in(self.wte(idx))), state)
        return self.ln_out(self.proj(self.drop(hidden))), state

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, return_logits: bool = True) -> GPTOutput:
        """As :meth:`GPT.forward`: logits, the mean next-token loss with ``targets``, and the loss
        alone, without the logits, with ``return_logits=False``."""
        if targets is not None:
            targets = check_targets(targets, idx, self.config.vocab_size)
        elif not return_logits:
            raise ValueError(LOSS_ALONE_NEEDS_TARGETS)
        return GPTOutput(*lm_head_and_loss(self.lm_head, self.hidden_states(idx), targets, return_logits))
