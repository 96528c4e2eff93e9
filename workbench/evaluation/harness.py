"""The workbench's language models as an lm-evaluation-harness model, ``workbench``: any task of the harness
on a GPT or LSTM checkpoint as it is, without conversion.

Importing this module registers the model with ``lm_eval`` (an optional dependency: ``pip install
gpt-workbench[lm-eval]``); ``python -m workbench lm-eval`` does that for the command line. Requests run
through the workbench's own batched scoring (:mod:`workbench.evaluation.scoring`) and decoding
(:mod:`workbench.models.generation`), so a harness number is the number the notebooks would compute.
On the exported checkpoint (``python -m workbench export``), ``lm_eval``'s own ``hf`` model gives the same
results (tests/test_lm_eval.py) except where the workbench's rules differ from the harness's:

- a context and its continuation are encoded separately (the harness encodes them whole and splits), which
  differs only where BPE would merge across the boundary (a continuation that does not start a word);
- a continuation longer than the window is an error, not cut; a document longer than the window is scored
  by :func:`~workbench.evaluation.scoring.rolling_windows` (each token predicted from at least
  ``n_ctx // 2`` tokens before it) where the harness's windows share one token of context;
- a prompt that leaves less than ``max_gen_toks`` of the window is cropped as decoding goes (the window
  moves), where the harness crops it first to leave room for every new token;
- text is text: a string that spells a special token is encoded as its characters, and a control token a
  model generates stays in the generated text, where the ``hf`` model drops it.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    from lm_eval import simple_evaluate
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
    from lm_eval.models.utils import normalize_gen_kwargs
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import make_table
except ModuleNotFoundError as error:  # an optional dependency: say how to install it
    raise ModuleNotFoundError(
        f"{error.msg}: the workbench's lm-evaluation-harness model needs lm_eval; install it with "
        "pip install 'gpt-workbench[lm-eval]'",
        name=error.name,
    ) from error

from ..core.checks import POSITIVE_INT
from ..core.device import resolve_device
from ..data.tokenizer import Tokenizer
from ..models.generation import generate_text
from ..models.gpt import GPT
from ..models.lstm import LSTMLanguageModel
from ..training import checkpoint as ckpt
from .scoring import score

DEFAULT_MAX_GEN_TOKS = 256  # the harness's default for a task that does not say
SAMPLING_OPTIONS = ("top_k", "top_p", "seed")
"""Generation options a task may pass besides the harness's own (until, max_gen_toks, do_sample, temperature)."""


@register_model("workbench")
class WorkbenchLM(LM):
    """A workbench checkpoint for ``lm_eval``: ``checkpoint`` is a pretraining run directory (its latest
    checkpoint) or a checkpoint directory, read with the tokenizer it was trained with; or pass ``model``
    and ``tokenizer`` directly. ``batch_size`` bounds the rows of each forward pass."""

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | None = None,
        batch_size: int | str = 32,
        device: str = "auto",
        max_gen_toks: int = DEFAULT_MAX_GEN_TOKS,
        *,
        model: GPT | LSTMLanguageModel | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        super().__init__()
        if (checkpoint is None) == (model is None) or (model is None) != (tokenizer is None):
            raise ValueError(
                f"the workbench model takes checkpoint=RUN_OR_CHECKPOINT, or model= and tokenizer= together; got "
                f"checkpoint={checkpoint!r}, model={type(model).__name__}, tokenizer={type(tokenizer).__name__}"
            )
        if checkpoint is not None:
            path = ckpt.checkpoint_of(Path(checkpoint), "checkpoint")
            model, tokenizer = ckpt.load_language_model(path), ckpt.checkpoint_tokenizer(path)
        if isinstance(batch_size, str) and batch_size.isdigit():  # from lm_eval's command line
            batch_size = int(batch_size)
        POSITIVE_INT(batch_size, "batch_size")
        POSITIVE_INT(max_gen_toks, "max_gen_toks")
        self.model = model.to(resolve_device(device)).eval()
        self.tokenizer = tokenizer
        self.batch_size, self.max_gen_toks = batch_size, max_gen_toks

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """``(log-probability, greedy)`` of each ``(context, continuation)``; an empty context reads
        ``<|endoftext|>``."""
        pairs = [tuple(request.args) for request in requests]
        frame = score(self.model, self.tokenizer, pairs, self.batch_size)
        results = [(float(logprob), bool(greedy)) for logprob, greedy in zip(frame["logprob"], frame["greedy"])]
        for pair, result in zip(pairs, results):
            self.cache_hook.add_partial("loglikelihood", pair, result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """The log-probability of each whole text after ``<|endoftext|>`` (perplexity tasks)."""
        texts = [request.args[0] for request in requests]
        frame = score(self.model, self.tokenizer, [("", text) for text in texts], self.batch_size, rolling=True)
        results = [float(logprob) for logprob in frame["logprob"]]
        for text, result in zip(texts, results):
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), result)
        return results

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Each context's continuation up to a stop string, ``<|endoftext|>`` or ``max_gen_toks`` tokens;
        greedy unless the task samples. Requests with the same options are decoded in batches."""
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(i)
        results: list[str] = [""] * len(requests)
        for members in groups.values():
            options = self._generation_options(requests[members[0]].args[1])
            members = sorted(members, key=lambda i: len(requests[i].args[0]))  # rows of a batch pad little
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                texts = generate_text(self.model, self.tokenizer, [requests[i].args[0] for i in batch], **options)
                for i, text in zip(batch, texts):
                    results[i] = text
                    self.cache_hook.add_partial("generate_until", requests[i].args, text)
        return results

    def _generation_options(self, gen_kwargs: dict) -> dict:
        """A task's generation options, normalised as the harness does for every model, as
        :func:`~workbench.models.generation.generate_text` arguments; an option it has not is named."""
        options = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        do_sample, temperature = options.pop("do_sample"), options.pop("temperature", 1.0)  # transformers' default
        stops = [stop for stop in options.pop("until") if stop]  # the harness ignores empty ones too
        arguments = dict(
            max_new_tokens=options.pop("max_gen_toks"),
            temperature=temperature if do_sample else 0.0,
            stop=stops or None,
        )
        unknown = sorted(set(options) - set(SAMPLING_OPTIONS))
        if unknown:
            raise ValueError(
                f"generation options {unknown} (of {gen_kwargs!r}) are not supported by the workbench model; "
                f"expected until, max_gen_toks, do_sample, temperature and {', '.join(SAMPLING_OPTIONS)}"
            )
        return arguments | options


def evaluate(
    model: LM,
    tasks: list[str],
    include_path: str | os.PathLike[str] | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    builtin_tasks: bool = True,
) -> dict:
    """``lm_eval.simple_evaluate`` of ``tasks`` (the harness's, or YAML files under ``include_path``), after
    checking that each task exists: an unknown name is an error naming it, not a traceback from inside
    the harness. ``builtin_tasks=False`` looks under ``include_path`` only, which skips indexing the
    harness's own tasks (about 15,000 files: 20 s on a laptop core)."""
    if not builtin_tasks and include_path is None:
        raise ValueError("builtin_tasks=False needs an include_path: without either there are no tasks to look up")
    manager = TaskManager(
        include_path=None if include_path is None else str(include_path), include_defaults=builtin_tasks
    )
    known = {*manager.all_tasks, *manager.all_groups, *manager.all_tags}
    unknown = [task for task in tasks if task not in known]
    if not tasks or unknown:
        places = (["the harness's tasks"] if builtin_tasks else []) + ([str(include_path)] if include_path else [])
        where = " or ".join(places)
        raise ValueError(
            f"tasks {tasks}: {unknown or 'none given'} not found in {where}; expected task names "
            "(`lm_eval ls tasks` lists them; an include path adds a folder of task YAML files)"
        )
    return simple_evaluate(model=model, tasks=tasks, num_fewshot=num_fewshot, limit=limit, task_manager=manager)


def results_table(results: dict) -> str:
    """The harness's own table of what :func:`evaluate` returns (task, metric, value, stderr)."""
    return make_table(results)
