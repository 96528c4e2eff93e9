"""The catalogue of bad inputs and faults: each one gets a clear error naming the value and what was
expected, never a traceback or a silent wrong result.

Four surfaces, one table each:

- the Python API (:data:`API`): the exception type, and fragments its message must hold: the value as
  given and what was expected;
- the command line (:data:`COMMANDS`): ``workbench.cli.main([...])`` in process, its exit status (2 a
  usage error, 1 a failure) and the one line it prints to stderr, ``workbench COMMAND: error: ...``;
- the notebooks' papermill parameters (:data:`PARAMETERS`): the ``from_params`` each notebook calls
  (and notebook 01's shared checks), refusing before any training;
- the widgets (:data:`WIDGETS`): the pure functions the widgets are views over.

A new guard gets an entry here. Nothing trains beyond a tiny model for a few updates, and nothing reads
the prepared data: each check happens before it would be needed.
"""

from __future__ import annotations

import functools
import math
import os
import re
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.cli import COMMANDS as COMMAND_NAMES
from workbench.cli import main
from workbench.core import POSITIVE_INT, one_of, sequence_of
from workbench.data.sources import DATA_DIR_ENV
from workbench.data.tokenizer import Tokenizer, train_bpe
from workbench.data.transforms import encode_examples
from workbench.evaluation.heuristics import evaluate, score_outcomes
from workbench.evaluation.scoring import score, score_token_requests
from workbench.experiments import PretrainingExperiment, TransferExperiment, ZeroShotExperiment
from workbench.experiments.explorer import Explorer
from workbench.experiments.recipes import RECIPES, recipe_yaml
from workbench.models import PRESETS
from workbench.models.generation import generate_text, left_pad
from workbench.models.gpt import IGNORE_INDEX
from workbench.training import checkpoint as ckpt
from workbench.training.config import TrainConfig
from workbench.training.finetuning import TaskModel, accuracy, finetune, task_loss
from workbench.training.trainer import build_optimizer
from workbench.ui.widgets import (
    AttentionMaps,
    attention_maps,
    example_html,
    explorer_config,
    loss_curve_viewer,
    loss_curves,
    read_history,
    sampling_options,
)

CORPUS = [
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.",
] * 20


@functools.cache
def _tok() -> Tokenizer:
    return train_bpe(CORPUS, 300)


@functools.cache
def _model() -> GPT:
    """A gpt1-micro (n_ctx 64) over the test tokenizer's vocabulary."""
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset("gpt1-micro", dropout=0.0, vocab_size=_tok().vocab_size)).eval()


@functools.cache
def _scratch() -> Path:
    """A directory for the files the API, parameter and widget entries read."""
    return Path(tempfile.mkdtemp(prefix="workbench-bad-inputs-"))


def V() -> int:
    return _model().config.vocab_size


def _ids(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long)


def _forward(idx, targets=None):
    return _model()(idx, targets)


def _generate(max_new_tokens=2, idx=None, **options):
    return _model().generate(_ids([1, 2, 3]) if idx is None else idx, max_new_tokens, **options)


def _task_model(kind="classification", **options) -> TaskModel:
    return TaskModel(_model(), kind, **options)


def _finetune(train=None, **options):
    train = [([[5, 6, 7]], 0), ([[8, 9]], 1)] if train is None else train
    config = TrainConfig(steps=1, batch_size=1, device="cpu", precision="fp32", progress=False)
    return finetune(_task_model(), train, config, pad_id=0, **options)


def _batch():
    return dict(input_ids=_ids([5, 6, 7]), extract=torch.tensor([2]), labels=torch.tensor([0]))


@functools.cache
def _damaged_checkpoint(file: str) -> Path:
    """A checkpoint (a gpt1-micro after one update) with one bit of ``file`` flipped where the file still
    reads: the lowest mantissa bit of a tensor's first value, or a digit of ``trainer.json``."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt1-micro"))
    optimizer = build_optimizer(model, TrainConfig())
    model(_ids([1, 2, 3]), _ids([2, 3, 4])).loss.backward()
    optimizer.step()
    path = ckpt.checkpoint_path(_scratch() / f"run-{file}", 1)
    state = {"step": 1, "model_class": "GPT", "model_config": model.config.to_dict()}
    ckpt.write_checkpoint(
        path, model=model, optimizer=optimizer, state=state, history=pd.DataFrame({"step": [1]}), model_config=None
    )
    data = bytearray((path / file).read_bytes())
    data[data.index(b'"step": ') + 8 if file == ckpt.STATE_FILE else 8 + int.from_bytes(data[:8], "little")] ^= 1
    (path / file).write_bytes(data)
    return path


@dataclass(frozen=True)
class Bad:
    """One bad input: what is called, the error it must raise, and what its message must name."""

    id: str
    call: Callable[[], object]
    names: tuple[str, ...]  # the value as given, as the message shows it
    expects: tuple[str, ...]  # what was expected
    error: type[BaseException] = ValueError
    pending: str = ""  # a gap outside this change's files: a strict xfail saying whose

    def param(self):
        marks = [pytest.mark.xfail(strict=True, reason=self.pending)] if self.pending else []
        return pytest.param(self, id=self.id, marks=marks)


def _raises(case: Bad) -> str:
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    for fragment in (*case.names, *case.expects):
        assert fragment in message, f"{fragment!r} is not in the message {message!r}"
    return message


# =============================================================================================
# The Python API

API = [
    # --- the model: inputs and targets
    Bad(
        "forward-empty-input-with-targets",
        lambda: _forward(torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, dtype=torch.long)),
        ("(1, 0)",),
        ("expected at least one token",),
    ),
    Bad(
        "forward-empty-batch-with-targets",
        lambda: _forward(torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, 4, dtype=torch.long)),
        ("(0, 4)",),
        ("expected at least one token",),
    ),
    Bad(
        "forward-target-id-outside-vocabulary",
        lambda: _forward(_ids([1, 2, 3]), _ids([2, 3, V()])),
        (lambda: f"target id {V()}",),
        (lambda: f"outside the vocabulary [0, {V()})",),
    ),
    Bad(
        "forward-negative-target-id",
        lambda: _forward(_ids([1, 2, 3]), _ids([2, 3, -5])),
        ("target id -5",),
        ("outside the vocabulary",),
    ),
    Bad(
        "forward-every-target-ignored",
        lambda: _forward(_ids([1, 2, 3]), torch.full((1, 3), IGNORE_INDEX)),
        ("IGNORE_INDEX (-100)",),
        ("expected at least one position",),
    ),
    Bad(
        "forward-targets-of-another-shape",
        lambda: _forward(_ids([1, 2]), _ids([2, 3, 4])),
        ("(1, 3)",),
        ("must equal idx shape (1, 2)",),
    ),
    Bad(
        "forward-float-targets",
        lambda: _forward(_ids([1, 2]), torch.zeros(1, 2)),
        ("torch.float32",),
        ("integer tensor",),
    ),
    Bad("forward-ids-as-a-list", lambda: _forward([[1, 2, 3]]), ("list",), ("integer tensor [batch, time]",)),
    Bad("forward-float-ids", lambda: _forward(torch.zeros(1, 3)), ("torch.float32",), ("integer tensor",)),
    Bad(
        "forward-one-dimensional-ids", lambda: _forward(torch.zeros(3, dtype=torch.long)), ("(3,)",), ("[batch, time]",)
    ),
    Bad(
        "forward-id-outside-vocabulary",
        lambda: _forward(_ids([1, V()])),
        (lambda: f"token id {V()}",),
        (lambda: f"[0, {V()})",),
    ),
    Bad("forward-negative-id", lambda: _forward(_ids([-1, 3])), ("token id -1",), ("outside the vocabulary",)),
    Bad(
        "forward-longer-than-the-context",
        lambda: _forward(torch.zeros(1, 65, dtype=torch.long)),
        ("sequence length 65",),
        ("n_ctx=64",),
    ),
    Bad("model-from-a-dict", lambda: GPT({"n_layer": 2}), ("dict",), ("GPTConfig",), TypeError),
    Bad(
        "config-heads-do-not-divide-the-width",
        lambda: GPTConfig.from_preset("gpt1", n_head=5),
        ("n_head=5", "d_model=768"),
        ("divisible",),
    ),
    Bad("config-unknown-preset", lambda: GPTConfig.from_preset("gpt5"), ("'gpt5'",), ("gpt1, gpt2",)),
    Bad(
        "config-dropout-of-one-and-a-half",
        lambda: GPTConfig.from_preset("gpt1", dropout=1.5),
        ("1.5",),
        ("a number in [0, 1)",),
    ),
    # --- generation
    Bad("generate-temperature-nan", lambda: _generate(temperature=math.nan), ("nan",), (">= 0 and finite",)),
    Bad("generate-temperature-inf", lambda: _generate(temperature=math.inf), ("inf",), (">= 0 and finite",)),
    Bad("generate-negative-temperature", lambda: _generate(temperature=-0.5), ("-0.5",), ("temperature must be >= 0",)),
    Bad("generate-temperature-as-text", lambda: _generate(temperature="hot"), ("'hot'",), (">= 0 and finite",)),
    Bad("generate-top-k-zero", lambda: _generate(top_k=0), ("got 0",), ("top_k must be a positive integer",)),
    Bad("generate-fractional-top-k", lambda: _generate(top_k=2.5), ("2.5",), ("a positive integer",)),
    Bad("generate-top-p-zero", lambda: _generate(top_p=0.0), ("0.0",), ("top_p must be in (0, 1]",)),
    Bad("generate-top-p-nan", lambda: _generate(top_p=math.nan), ("nan",), ("in (0, 1]",)),
    Bad("generate-top-p-above-one", lambda: _generate(top_p=1.5), ("1.5",), ("in (0, 1]",)),
    Bad("generate-seed-beyond-64-bits", lambda: _generate(seed=2**64), (str(2**64),), ("[0, 2**64)",)),
    Bad("generate-negative-seed", lambda: _generate(seed=-1), ("-1",), ("[0, 2**64)",)),
    Bad("generate-seed-as-text", lambda: _generate(seed="1"), ("'1'",), ("an integer",)),
    Bad("generate-negative-length", lambda: _generate(-1), ("-1",), ("max_new_tokens must be an integer >= 0",)),
    Bad("generate-fractional-length", lambda: _generate(2.0), ("2.0",), ("an integer >= 0",)),
    Bad(
        "generate-eos-outside-vocabulary",
        lambda: _generate(eos_token_id=V()),
        (lambda: f"got {V()}",),
        (lambda: f"a token id in [0, {V()})",),
    ),
    Bad(
        "generate-empty-prompt-tensor",
        lambda: _generate(idx=torch.zeros(1, 0, dtype=torch.long)),
        ("the prompt is empty",),
        ("start from <|endoftext|>",),
    ),
    Bad(
        "generate-mask-of-another-shape",
        lambda: _generate(attention_mask=torch.ones(1, 2)),
        ("(1, 2)",),
        ("must equal idx shape (1, 3)",),
    ),
    Bad(
        "generate-right-padded-mask",
        lambda: _generate(attention_mask=_ids([1, 1, 0])),
        ("padding in the last column",),
        ("pad prompts on the left",),
    ),
    Bad(
        "generate-text-prompt-with-a-lone-surrogate",
        lambda: generate_text(_model(), _tok(), "To be\ud800", 2),
        (r"'\ud800'",),
        ("expected valid Unicode",),
    ),
    Bad("generate-text-prompt-none", lambda: generate_text(_model(), _tok(), None, 2), ("None",), ("a string",)),
    Bad("generate-text-no-prompts", lambda: generate_text(_model(), _tok(), [], 2), ("[]",), ("non-empty list",)),
    Bad(
        "generate-text-prompt-not-text",
        lambda: generate_text(_model(), _tok(), [1, 2], 2),
        ("[1, 2]",),
        ("list of strings",),
    ),
    Bad("generate-text-stop-a-number", lambda: generate_text(_model(), _tok(), "a", 2, stop=3), ("3",), ("strings",)),
    Bad(
        "generate-text-empty-stop-string",
        lambda: generate_text(_model(), _tok(), "a", 2, stop=[""]),
        ("['']",),
        ("non-empty strings",),
    ),
    Bad("left-pad-an-empty-sequence", lambda: left_pad([[1], []], pad_id=0), ("[1, 0]",), ("no empty ones",)),
    # --- hook points and the activation cache
    Bad(
        "hook-unknown-name",
        lambda: _model().run_with_cache(_ids([1, 2]), ["blocks.5.hook_resid_pre"]),
        ("'blocks.5.hook_resid_pre'",),
        ("its hook points are", "blocks.{0..1}.", "hook_resid_post"),
    ),
    Bad(
        "hook-final-layer-norm-of-a-post-ln-model",
        lambda: _model().run_with_cache(_ids([1, 2]), ["ln_final.hook_normalized"]),
        ("'ln_final.hook_normalized'",),
        ("(no final LayerNorm)",),
    ),
    Bad("hook-names-a-string", lambda: _model().run_with_cache(_ids([1]), "hook_embed"), ("'hook_embed'",), ("list",)),
    Bad(
        "hook-not-a-function",
        lambda: _model().run_with_hooks(_ids([1, 2]), {"hook_embed": 3}),
        ("hook_embed", "got 3"),
        ("must be a function (tensor, name) -> tensor or None",),
    ),
    Bad(
        "hook-returns-another-shape",
        lambda: _model().run_with_hooks(_ids([1, 2]), {"blocks.0.hook_mlp_out": lambda x, _: x[0]}),
        ("blocks.0.hook_mlp_out returned (2, 64)",),
        ("expected a tensor of shape (1, 2, 64)",),
    ),
    Bad(
        "cache-name-not-cached",
        lambda: _model().run_with_cache(_ids([1, 2]), ["hook_embed"])[1]["blocks.0.hook_z"],
        ("'blocks.0.hook_z' was not cached",),
        ("cached: ['hook_embed']",),
        error=KeyError,
    ),
    # --- the tokenizer
    Bad("decode-id-outside-vocabulary", lambda: _tok().decode([5, 10**6]), ("1000000",), ("expected 0 <= id <",)),
    Bad("decode-negative-id", lambda: _tok().decode([-1]), ("-1",), ("expected 0 <= id <",)),
    Bad("encode-lone-surrogate", lambda: _tok().encode("a\udc00b"), (r"'\udc00'",), ("expected valid Unicode",)),
    # --- task encoding
    Bad(
        "encode-examples-string-label",
        lambda: encode_examples("classification", [{"text": "a fine play", "label": "positive"}], _tok(), 64),
        ("'positive'",),
        ("expected an int class index",),
    ),
    Bad(
        "encode-examples-without-label",
        lambda: encode_examples("classification", [{"text": "a fine play"}], _tok(), 64),
        ("'label'",),
        ("expected an int class index",),
    ),
    # --- scoring and the zero-shot heuristics
    Bad(
        "score-none-continuation",
        lambda: score(_model(), _tok(), [("a", None)]),
        ("('a', None)",),
        ("pair of strings",),
    ),
    Bad("score-none-context", lambda: score(_model(), _tok(), [(None, " a")]), ("(None, ' a')",), ("pair of strings",)),
    Bad("score-request-not-a-pair", lambda: score(_model(), _tok(), ["abc"]), ("'abc'",), ("(context, continuation)",)),
    Bad("score-requests-a-string", lambda: score(_model(), _tok(), "abc"), ("'abc'",), ("a list of",)),
    Bad("score-no-requests", lambda: score(_model(), _tok(), []), ("no requests",), ("non-empty list",)),
    Bad("score-batch-size-zero", lambda: score(_model(), _tok(), [("a", " b")], 0), ("got 0",), ("positive integer",)),
    Bad(
        "score-blank-continuation",
        lambda: score(_model(), _tok(), [("a", " b"), ("a", " ")]),
        ("request 1", "' '"),
        ("expected some text",),
    ),
    Bad(
        "score-continuation-longer-than-the-window",
        lambda: score_token_requests(_model(), [([1], [2] * 70)]),
        ("70 tokens",),
        ("n_ctx=64", "at most 63"),
    ),
    Bad(
        "score-token-outside-vocabulary",
        lambda: score_token_requests(_model(), [([V()], [2])]),
        (lambda: f"token id {V()}",),
        ("outside the vocabulary",),
    ),
    Bad(
        "evaluate-max-examples-zero",
        lambda: evaluate(_model(), _tok(), "sentiment", max_examples=0),
        ("got 0",),
        ("max_examples must be None or a positive integer",),
    ),
    Bad(
        "evaluate-negative-max-examples",
        lambda: evaluate(_model(), _tok(), "sentiment", max_examples=-3),
        ("-3",),
        ("positive integer",),
    ),
    Bad(
        "score-outcomes-max-examples-zero",
        lambda: score_outcomes(_model(), _tok(), max_examples=0),
        ("got 0",),
        ("positive integer",),
    ),
    Bad(
        "evaluate-unknown-heuristic",
        lambda: evaluate(_model(), _tok(), "winograd"),
        ("['winograd']",),
        ("expected some of ['acceptability'",),
    ),
    Bad(
        "evaluate-no-heuristics",
        lambda: evaluate(_model(), _tok(), []),
        ("[]",),
        ("expected some of ['acceptability'",),
    ),
    Bad(
        "evaluate-unknown-verbalizer",
        lambda: evaluate(_model(), _tok(), "sentiment", verbalizer="yes/no"),
        ("'yes/no'",),
        ("expected one of",),
    ),
    Bad(
        "evaluate-batch-size-zero",
        lambda: evaluate(_model(), _tok(), "sentiment", batch_size=0),
        ("got 0",),
        ("positive integer",),
    ),
    Bad(
        "evaluate-negative-seed",
        lambda: evaluate(_model(), _tok(), "sentiment", seed=-1),
        ("-1",),
        ("an integer >= 0",),
    ),
    Bad(
        "evaluate-unknown-split",
        lambda: evaluate(_model(), _tok(), "sentiment", split="holdout"),
        ("'holdout'",),
        ("expected one of",),
    ),
    # --- fine-tuning
    Bad("task-loss-lm-weight-nan", lambda: task_loss(_task_model(), _batch(), math.nan), ("nan",), ("a number >= 0",)),
    Bad(
        "finetune-function-lm-weight-nan",
        lambda: _finetune(lm_weight=math.nan),
        ("nan",),
        ("lm_weight (lambda) must be a number >= 0",),
    ),
    Bad("finetune-function-negative-lm-weight", lambda: _finetune(lm_weight=-1.0), ("-1.0",), ("a number >= 0",)),
    Bad("finetune-string-label", lambda: _finetune([([[5, 6]], "pos")]), ("'pos'",), ("expected an int class index",)),
    Bad("finetune-label-outside-the-head", lambda: _finetune([([[5, 6]], 2)]), ("label 2",), ("head with 2 outputs",)),
    Bad("finetune-no-examples", lambda: _finetune([]), ("no training examples",), ("expected a non-empty list",)),
    Bad("task-model-unknown-kind", lambda: _task_model("regression"), ("'regression'",), ("expected one of",)),
    Bad("task-model-one-class", lambda: _task_model(n_classes=1), ("got 1",), ("n_classes >= 2",)),
    Bad("task-model-dropout-above-one", lambda: _task_model(dropout=1.5), ("1.5",), ("a number in [0, 1)",)),
    Bad("task-model-without-a-gpt", lambda: TaskModel(None, "classification"), ("NoneType",), ("a GPT body",)),
    Bad("task-model-unknown-head", lambda: _task_model(head="softmax"), ("'softmax'",), ("head must be one of",)),
    Bad(
        "task-model-likelihood-head-on-classification",
        lambda: _task_model(head="likelihood", delim_id=3),
        ("classification task",),
        ("scores the choices of a multiple_choice task",),
    ),
    Bad(
        "task-model-likelihood-head-without-delim",
        lambda: _task_model("multiple_choice", head="likelihood"),
        ("None",),
        ("needs delim_id",),
    ),
    Bad(
        "task-model-inputs-of-the-wrong-rank",
        lambda: _task_model("multiple_choice")(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, dtype=torch.long)),
        ("(2, 5)",),
        ("[batch, group, time]",),
    ),
    Bad(
        "accuracy-batch-size-zero",
        lambda: accuracy(_task_model(), [([[5, 6]], 0)], 0, batch_size=0),
        ("got 0",),
        ("positive integer",),
    ),
    # --- checkpoints: a bit flipped on disk that leaves the file readable and its values finite
    Bad(
        "checkpoint-bit-flip-in-weights",
        lambda: ckpt.load_model(_damaged_checkpoint(ckpt.MODEL_FILE)),
        ("model.safetensors", "SHA-256"),
        ("is damaged", "hashes.json recorded", "python -m workbench verify"),
    ),
    Bad(
        "checkpoint-bit-flip-in-optimizer-state",
        lambda: ckpt.read_safetensors(_damaged_checkpoint(ckpt.OPTIMIZER_FILE) / ckpt.OPTIMIZER_FILE),
        ("optimizer.safetensors", "SHA-256"),
        ("is damaged", "hashes.json recorded", "python -m workbench verify"),
    ),
    Bad(
        "checkpoint-bit-flip-in-trainer-state",
        lambda: ckpt.read_state(_damaged_checkpoint(ckpt.STATE_FILE)),
        ("trainer.json", "SHA-256"),
        ("is damaged", "hashes.json recorded", "python -m workbench verify"),
    ),
]


def _resolved(fragments):
    return tuple(f() if callable(f) else f for f in fragments)


@pytest.mark.parametrize("case", [c.param() for c in API])
def test_api(case: Bad):
    _raises(Bad(case.id, case.call, _resolved(case.names), _resolved(case.expects), case.error))


# =============================================================================================
# The command line: workbench.cli.main in process


@dataclass(frozen=True)
class BadCommand:
    id: str
    argv: Callable[[Context], list[str]]
    status: int | tuple[int, ...]  # 2 usage error, 1 failure (a tuple: either is right)
    names: tuple[str, ...]
    expects: tuple[str, ...]
    pending: str = ""

    def param(self):
        marks = [pytest.mark.xfail(strict=True, reason=self.pending)] if self.pending else []
        return pytest.param(self, id=self.id, marks=marks)


@dataclass
class Context:
    """What a command's arguments may need: a scratch directory, and fixtures fetched lazily."""

    tmp: Path
    request: pytest.FixtureRequest

    def file(self, name: str, text: str = "") -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def notebooks(self) -> Path:
        self.file("notebooks/01_a.ipynb", "{}")
        self.file("notebooks/02_b.ipynb", "{}")
        return self.tmp / "notebooks"

    def token_files(self) -> tuple[Path, Path]:
        return self.request.getfixturevalue("token_files")

    def damaged_run(self) -> Path:
        return self.request.getfixturevalue("damaged_run")

    def run_without_tokenizer(self) -> Path:
        return self.request.getfixturevalue("run_without_tokenizer")


CPU_YAML = recipe_yaml(RECIPES["cpu"])

TINY_PRETRAIN = [
    "--preset",
    "gpt2-micro",
    "--n-checkpoints",
    "1",
    "--train.steps",
    "1",
    "--train.batch-size",
    "2",
    "--train.device",
    "cpu",
    "--train.precision",
    "fp32",
    "--train.eval-every",
    "0",
    "--train.progress",
    "false",
]


def _pretrain(c: Context, *extra: str) -> list[str]:
    return ["pretrain", "--train-tokens", str(c.token_files()[0]), "--out", str(c.tmp / "run"), *TINY_PRETRAIN, *extra]


def _pretrain_without_tensorboard(c: Context) -> list[str]:
    """``pretrain --tensorboard`` where TensorBoard is not installed (its import fails for this test)."""
    c.request.getfixturevalue("monkeypatch").setitem(sys.modules, "torch.utils.tensorboard", None)
    return _pretrain(c, "--tensorboard", str(c.tmp / "tensorboard"))


def _finetune_cli(*extra: str) -> list[str]:
    return ["finetune", "--task", "sentiment", *extra]


COMMANDS = [
    BadCommand("no-command", lambda c: [], 2, ("COMMAND",), ("required",)),
    BadCommand("unknown-command", lambda c: ["train"], 2, ("'train'",), ("choose from",)),
    BadCommand("unknown-option", lambda c: ["recipes", "--colour"], 2, ("--colour",), ("unrecognized arguments",)),
    # data
    BadCommand(
        "data-prepare-vocab-size-10",
        lambda c: ["data", "prepare", "--vocab-size", "10", "--no-progress", "--data-dir", str(c.tmp / "data")],
        (1, 2),  # refused by the parser or by prepare(), before any fetch
        ("10",),
        ("vocab",),
    ),
    BadCommand(
        "data-fetch-unwritable-data-dir",
        lambda c: ["data", "fetch", "--no-progress", "--data-dir", str(c.file("occupied") / "data")],
        1,
        ("occupied",),
        ("writable",),
    ),
    BadCommand("data-unknown-action", lambda c: ["data", "download"], 2, ("'download'",), ("choose from",)),
    BadCommand(
        "data-vocab-size-not-a-number", lambda c: ["data", "prepare", "--vocab-size", "many"], 2, ("'many'",), ("int",)
    ),
    # reproduce
    BadCommand(
        "reproduce-only-matching-nothing",
        lambda c: ["reproduce", "--notebooks", str(c.notebooks()), "--only", "zz"],
        1,
        ("['zz']",),
        ("expected a prefix of one of ['01_a.ipynb', '02_b.ipynb']",),
    ),
    BadCommand(
        "reproduce-parameter-invalid-yaml",
        lambda c: ["reproduce", "--notebooks", str(c.notebooks()), "-p", "seeds", "[0, 1"],
        2,
        ("-p seeds '[0, 1'",),
        ("not valid YAML", "expected a YAML value"),
    ),
    BadCommand(
        "reproduce-parameter-name-not-an-identifier",
        lambda c: ["reproduce", "--notebooks", str(c.notebooks()), "-p", "1x", "5"],
        2,
        ("'1x'",),
        ("not a Python identifier",),
    ),
    BadCommand(
        "reproduce-missing-notebook-directory",
        lambda c: ["reproduce", "--notebooks", str(c.tmp / "none")],
        1,
        ("none",),
        ("does not exist; expected a directory of *.ipynb files",),
    ),
    BadCommand(
        "reproduce-empty-notebook-directory",
        lambda c: ["reproduce", "--notebooks", str(c.tmp)],
        1,
        ("no notebooks to run",),
        ("expected *.ipynb files",),
    ),
    # recipes
    BadCommand(
        "recipes-out-without-yaml",
        lambda c: ["recipes", "--out", "x.yaml"],
        2,
        ("--out x.yaml",),
        ("needs --yaml NAME",),
    ),
    BadCommand("recipes-unknown-yaml", lambda c: ["recipes", "--yaml", "laptop"], 2, ("'laptop'",), ("choose from",)),
    BadCommand(
        "recipes-unwritable-out",
        lambda c: ["recipes", "--yaml", "cpu", "--out", str(c.file("occupied") / "cpu.yaml")],
        1,
        ("occupied",),
        ("directory",),
    ),
    # pretrain
    BadCommand(
        "pretrain-negative-lr",
        lambda c: ["pretrain", "--train.lr", "-1"],
        1,
        ("-1.0",),
        ("TrainConfig.lr must be a positive number",),
    ),
    BadCommand(
        "pretrain-zero-steps", lambda c: ["pretrain", "--train.steps", "0"], 1, ("got 0",), ("a positive integer",)
    ),
    BadCommand(
        "pretrain-steps-not-a-number",
        lambda c: ["pretrain", "--train.steps", "many"],
        2,
        ("'many'",),
        ("expected int",),
    ),
    BadCommand(
        "pretrain-unknown-recipe", lambda c: ["pretrain", "--recipe", "laptop"], 2, ("'laptop'",), ("choose from",)
    ),
    BadCommand(
        "pretrain-unknown-preset", lambda c: ["pretrain", "--preset", "gpt5"], 1, ("'gpt5'",), ("must be one of",)
    ),
    BadCommand("pretrain-lr-nan", lambda c: ["pretrain", "--train.lr", "nan"], 1, ("nan",), ("a positive number",)),
    BadCommand(
        "pretrain-missing-recipe-file",
        lambda c: ["pretrain", "--recipe-file", str(c.tmp / "mine.yaml")],
        1,
        ("mine.yaml",),
        ("the path of an existing .yaml file",),
    ),
    BadCommand(
        "pretrain-recipe-file-invalid-yaml",
        lambda c: ["pretrain", "--recipe-file", str(c.file("mine.yaml", "pretraining: [\n"))],
        1,
        ("mine.yaml",),
        ("is not valid YAML",),
    ),
    BadCommand(
        "pretrain-recipe-file-bad-value",
        lambda c: [
            "pretrain",
            "--recipe-file",
            str(c.file("mine.yaml", CPU_YAML.replace("\n  dropout: 0.1", "\n  dropout: 2"))),
        ],
        1,
        ("got 2",),
        ("PretrainSpec.dropout must be a number in [0, 1)",),
    ),
    BadCommand(
        "pretrain-val-tokens-without-train-tokens",
        lambda c: ["pretrain", "--val-tokens", str(c.file("val.npy"))],
        2,
        ("--val-tokens",),
        ("without --train-tokens",),
    ),
    BadCommand(
        "pretrain-missing-token-file",
        lambda c: ["pretrain", "--train-tokens", str(c.tmp / "missing.npy"), *TINY_PRETRAIN],
        1,
        ("missing.npy",),
        ("does not exist",),
    ),
    BadCommand(
        "pretrain-micro-batch-not-dividing",
        lambda c: _pretrain(c, "--train.micro-batch-size", "3"),
        1,
        ("micro_batch_size=3",),
        ("not a multiple",),
    ),
    BadCommand(
        "pretrain-tensorboard-not-installed",
        _pretrain_without_tensorboard,
        1,
        ("TensorBoard logging needs the tensorboard package",),
        ("pip install 'gpt-workbench[tensorboard]'",),
    ),
    # finetune
    BadCommand(
        "finetune-lm-weight-nan",
        lambda c: _finetune_cli("--lm-weight", "nan"),
        2,
        ("'nan'",),
        ("expected a number >= 0",),
    ),
    BadCommand(
        "finetune-negative-lm-weight", lambda c: _finetune_cli("--lm-weight", "-1"), 2, ("'-1'",), ("a number >= 0",)
    ),
    BadCommand(
        "finetune-lm-weight-not-a-number",
        lambda c: _finetune_cli("--lm-weight", "half"),
        2,
        ("'half'",),
        ("a number >= 0",),
    ),
    BadCommand(
        "finetune-negative-layers", lambda c: _finetune_cli("--layers", "-1"), 2, ("'-1'",), ("an integer >= 0",)
    ),
    BadCommand(
        "finetune-zero-n-train", lambda c: _finetune_cli("--n-train", "0"), 2, ("'0'",), ("a positive integer",)
    ),
    BadCommand("finetune-unknown-task", lambda c: ["finetune", "--task", "qa"], 2, ("'qa'",), ("choose from",)),
    BadCommand("finetune-without-task", lambda c: ["finetune"], 2, ("--task",), ("required",)),
    BadCommand(
        "finetune-layers-without-checkpoint",
        lambda c: _finetune_cli("--layers", "1"),
        2,
        ("--layers 1",),
        ("needs --checkpoint",),
    ),
    BadCommand(
        "finetune-missing-checkpoint",
        lambda c: _finetune_cli("--checkpoint", str(c.tmp / "nowhere")),
        1,
        ("nowhere",),
        ("expected a pretraining run directory",),
    ),
    BadCommand(
        "finetune-run-directory-without-checkpoints",
        lambda c: _finetune_cli("--checkpoint", str(c.file("run/checkpoints/.keep").parent.parent)),
        1,
        ("run",),
        ("holds no checkpoint", "expected a run directory"),
    ),
    BadCommand(
        "finetune-damaged-checkpoint",
        lambda c: _finetune_cli("--checkpoint", str(c.damaged_run())),
        1,
        ("model.safetensors",),
        ("damaged",),
    ),
    BadCommand(
        "finetune-checkpoint-without-tokenizer",
        lambda c: _finetune_cli("--checkpoint", str(c.run_without_tokenizer())),
        1,
        ("train.npy",),
        ("records no tokenizer", "expected a checkpoint trained on packed tokens"),
    ),
    BadCommand(
        "finetune-unknown-option-value",
        lambda c: _finetune_cli("--train.precision", "fp8"),
        1,
        ("'fp8'",),
        ("must be one of",),
    ),
    # verify
    BadCommand("verify-without-path", lambda c: ["verify"], 2, ("RUN_DIR",), ("required",)),
    BadCommand(
        "verify-missing-directory",
        lambda c: ["verify", str(c.tmp / "nowhere")],
        1,
        ("nowhere",),
        ("does not exist", "expected a run directory"),
    ),
    BadCommand(
        "verify-not-a-run-directory",
        lambda c: ["verify", str(c.file("notes/todo.txt").parent)],
        1,
        ("notes",),
        ("neither a run directory nor a checkpoint directory", "expected a run directory"),
    ),
    BadCommand(
        "verify-run-directory-without-checkpoints",
        lambda c: ["verify", str(c.file("run/checkpoints/.keep").parent.parent)],
        1,
        ("run",),
        ("holds no checkpoint", "expected a run directory"),
    ),
    BadCommand(
        "verify-bit-flip-in-weights",
        lambda c: ["verify", str(_damaged_checkpoint(ckpt.MODEL_FILE).parent.parent)],
        1,
        ("step-00000001", "model.safetensors", "SHA-256"),
        ("1 damaged checkpoint(s)", "hashes.json recorded"),
    ),
    # export and lm-eval
    BadCommand("export-without-out-dir", lambda c: ["export", str(c.tmp)], 2, ("OUT_DIR",), ("required",)),
    BadCommand(
        "export-missing-source",
        lambda c: ["export", str(c.tmp / "nowhere"), str(c.tmp / "out")],
        1,
        ("RUN_OR_CHECKPOINT", "nowhere"),
        ("does not exist", "expected a pretraining run directory"),
    ),
    BadCommand(
        "export-untokenized-run",
        lambda c: ["export", str(c.run_without_tokenizer()), str(c.tmp / "out")],
        1,
        ("train.npy",),
        ("records no tokenizer", "expected a checkpoint trained on packed tokens"),
    ),
    BadCommand(
        "lm-eval-only-include-path-alone",
        lambda c: ["lm-eval", str(c.tmp), "--tasks", "hellaswag", "--only-include-path"],
        2,
        ("--only-include-path",),
        ("needs --include-path DIR",),
    ),
    BadCommand(
        "lm-eval-not-a-run-directory",
        lambda c: ["lm-eval", str(c.file("notes/todo.txt").parent), "--tasks", "x", "--include-path", str(c.tmp)],
        1,
        ("checkpoint", "notes"),
        ("neither a run directory nor a checkpoint", "expected a pretraining run directory"),
    ),
]


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    """Python's LICENSE as byte tokens, in train and validation .npy files."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_bytes()
    tokens = np.frombuffer(text, dtype=np.uint8).astype(np.uint16)
    root = tmp_path_factory.mktemp("tokens")
    np.save(root / "train.npy", tokens[: len(tokens) // 2])
    np.save(root / "val.npy", tokens[len(tokens) // 2 :])
    return root / "train.npy", root / "val.npy"


@pytest.fixture(scope="module")
def damaged_run(tmp_path_factory, token_files):
    """A one-update pretraining run whose weights file was then cut short."""
    run = tmp_path_factory.mktemp("damaged") / "run"
    assert main(["pretrain", "--train-tokens", str(token_files[0]), "--out", str(run), *TINY_PRETRAIN]) == 0
    weights = next(run.glob("checkpoints/*/model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    return run


@pytest.fixture(scope="module")
def run_without_tokenizer(tmp_path_factory, token_files):
    """A one-update pretraining run on raw token ids (.npy), which record no tokenizer."""
    run = tmp_path_factory.mktemp("untokenized") / "run"
    assert main(["pretrain", "--train-tokens", str(token_files[0]), "--out", str(run), *TINY_PRETRAIN]) == 0
    return run


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """Commands that set the data directory or fetch leave the session as it was, and fail fast offline."""
    if DATA_DIR_ENV in os.environ:
        monkeypatch.setenv(DATA_DIR_ENV, os.environ[DATA_DIR_ENV])
    else:
        monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # a fetch fails at once instead of waiting for the network
    monkeypatch.chdir(tmp_path)  # nothing lands in the repository (runs/, recipes)
    return tmp_path


def _command_error(argv: list[str], capsys) -> tuple[int, str]:
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return status, lines[0]


@pytest.mark.parametrize("case", [c.param() for c in COMMANDS])
def test_command(case: BadCommand, isolated, request, capsys):
    argv = case.argv(Context(isolated, request))
    status, line = _command_error(argv, capsys)
    command = next((a for a in argv if not a.startswith("-")), None)
    prog = f"workbench {command}" if command in COMMAND_NAMES else "workbench"
    assert line.startswith(f"{prog}: error: "), line
    assert status in (case.status if isinstance(case.status, tuple) else (case.status,)), line
    for fragment in (*case.names, *case.expects):
        assert fragment in line, f"{fragment!r} is not in {line!r}"


def test_debug_shows_the_traceback_and_still_one_error_line(isolated, capsys):
    for argv in (["--debug", "recipes", "--out", "x.yaml"], ["recipes", "--out", "x.yaml", "--debug"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "UsageError" in err
        assert err.strip().splitlines()[-1].startswith("workbench recipes: error: --out x.yaml needs --yaml NAME")
    assert main(["--debug", "pretrain", "--train.lr", "-1"]) == 1
    assert "Traceback" in capsys.readouterr().err


# =============================================================================================
# The notebooks' parameters (papermill -p NAME VALUE): the from_params each notebook calls


def _hf_directory(tmp: Path, *files: str) -> str:
    tmp.mkdir(parents=True, exist_ok=True)
    for name in files:
        (tmp / name).write_text("{}")
    return str(tmp)


P, T, Z, E = (
    PretrainingExperiment.from_params,
    TransferExperiment.from_params,
    ZeroShotExperiment.from_params,
    Explorer.from_params,
)

PARAMETERS = [
    # 01 parameter count: the shared checks its first cell calls
    Bad(
        "01-models-empty",
        lambda: sequence_of(one_of(PRESETS))([], "models"),
        ("models", "got []"),
        ("a non-empty list",),
    ),
    Bad(
        "01-models-unknown-preset",
        lambda: sequence_of(one_of(PRESETS))(["gpt5"], "models"),
        ("['gpt5']",),
        ("one of ['gpt1'",),
    ),
    Bad(
        "01-models-a-string", lambda: sequence_of(one_of(PRESETS))("gpt1", "models"), ("'gpt1'",), ("a non-empty list",)
    ),
    Bad("01-n-classes-zero", lambda: POSITIVE_INT(0, "n_classes"), ("n_classes", "got 0"), ("a positive integer",)),
    # 02 pretraining
    Bad("02-unknown-scale", lambda: P("laptop"), ("'laptop'",), ("expected one of ['cpu', 'gpu', 'paper']",)),
    Bad("02-steps-zero", lambda: P(steps=0), ("got 0",), ("TrainConfig.steps must be a positive integer",)),
    Bad("02-steps-fractional", lambda: P(steps=2.5), ("2.5",), ("a positive integer",)),
    Bad("02-steps-nan", lambda: P(steps=math.nan), ("nan",), ("a positive integer",)),
    Bad("02-unknown-device", lambda: P(device="tpu"), ("'tpu'",), ("'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'",)),
    Bad("02-unknown-precision", lambda: P(precision="fp8"), ("'fp8'",), ("one of ['auto', 'fp32', 'bf16']",)),
    Bad("02-negative-sample-tokens", lambda: P(sample_tokens=-1), ("-1",), ("an integer >= 0",)),
    Bad("02-more-samples-than-prompts", lambda: P(n_samples=99), ("99",), ("at most",)),
    # 03 layer transfer
    Bad("03-unknown-task", lambda: T(tasks=["nope"]), ("('nope',)",), ("one of ['sentiment'",)),
    Bad("03-no-tasks", lambda: T(tasks=[]), ("got ()",), ("a non-empty list",)),
    Bad("03-negative-seed", lambda: T(seeds=[-1]), ("(-1,)",), ("an integer >= 0",)),
    Bad("03-seeds-none", lambda: T(seeds=None), ("None",), ("a non-empty list",)),
    Bad("03-layers-beyond-the-model", lambda: T(layers=[99]), ("(99,)",), ("an integer in 0..",)),
    Bad("03-layers-a-number", lambda: T(layers=5), ("5",), ("a non-empty list",)),
    Bad("03-n-labelled-zero", lambda: T(n_labelled=0), ("'corrupted_pair': 0",), ("a positive integer or None",)),
    Bad(
        "03-n-labelled-unknown-task",
        lambda: T(n_labelled={"nope": 5}),
        ("['nope']",),
        ("tasks: ['corrupted_pair']",),
    ),
    Bad("03-pretrain-steps-zero", lambda: T(pretrain_steps=0), ("got 0",), ("a positive integer",)),
    Bad("03-negative-finetune-steps", lambda: T(finetune_steps=-2), ("-2",), ("a positive integer",)),
    Bad("03-unknown-device", lambda: T(device="gpu0"), ("'gpu0'",), ("'cuda:N'",)),
    # 04 zero-shot
    Bad("04-unknown-heuristic", lambda: Z(heuristics=["winograd"]), ("('winograd',)",), ("one of ['acceptability'",)),
    Bad("04-no-heuristics", lambda: Z(heuristics=[]), ("got ()",), ("a non-empty list",)),
    Bad("04-max-examples-zero", lambda: Z(max_examples=0), ("got 0",), ("None or a positive integer",)),
    Bad("04-negative-seed", lambda: Z(supervised_seeds=[-1]), ("(-1,)",), ("an integer >= 0",)),
    Bad("04-unknown-scaling-preset", lambda: Z(scaling_presets=["gpt5"]), ("('gpt5',)",), ("one of ['gpt1'",)),
    Bad("04-batch-size-zero", lambda: Z(batch_size=0), ("got 0",), ("a positive integer",)),
    Bad("04-pretraining-runs-zero", lambda: Z(pretraining_runs=0), ("got 0",), ("a positive integer",)),
    Bad("04-train-split", lambda: Z(split="train"), ("'train'",), ("one of ['dev', 'test']",)),
    Bad("04-pretrained-empty", lambda: Z(pretrained=""), ("got ''",), ("None or a non-empty string",)),
    Bad(
        "04-pretrained-missing-directory",
        lambda: Z(pretrained="/nonexistent/gpt2-weights"),
        ("'/nonexistent/gpt2-weights'",),
        ("expected a local directory with config.json",),
    ),
    Bad(
        "04-pretrained-hub-name-not-in-the-cache",
        lambda: Z(pretrained="no-such-org/no-such-model"),
        ("'no-such-org/no-such-model'",),
        ("a hub name such as 'gpt2' whose files the Hugging Face cache holds",),
    ),
    Bad(
        "04-pretrained-directory-without-config",
        lambda: Z(pretrained=_hf_directory(_scratch() / "hf-empty")),
        ("hf-empty", "without ['config.json', 'model.safetensors']"),
        ("expected a local directory with config.json",),
    ),
    Bad(
        "04-pretrained-directory-without-weights",
        lambda: Z(pretrained=_hf_directory(_scratch() / "hf-config", "config.json")),
        ("without ['model.safetensors']",),
        ("expected a local directory with config.json and model.safetensors",),
    ),
    # 05 explore
    Bad(
        "05-unknown-model-source",
        lambda: E(model_source="pretrained-somewhere"),
        ("'pretrained-somewhere'",),
        ("an existing run directory",),
    ),
    Bad(
        "05-model-source-without-checkpoint",
        lambda: E(model_source=_hf_directory(_scratch() / "not-a-run", "notes.txt")),
        ("not-a-run",),
        ("expected a run directory written by the Trainer",),
        FileNotFoundError,
    ),
    Bad("05-demo-steps-zero", lambda: E(demo_steps=0), ("got 0",), ("a positive integer",)),
    Bad("05-negative-seed", lambda: E(seed=-1), ("-1",), ("an integer >= 0",)),
    Bad("05-seed-beyond-64-bits", lambda: E(seed=2**64), (str(2**64),), ("below 2**64",)),
    Bad("05-prompt-none", lambda: E(prompt=None), ("None",), ("a string",)),
    Bad("05-max-new-tokens-bool", lambda: E(max_new_tokens=True), ("True",), ("a positive integer",)),
    Bad("05-blank-attention-text", lambda: E(attention_text="  "), ("'  '",), ("a non-empty string",)),
]


@pytest.mark.parametrize("case", [c.param() for c in PARAMETERS])
def test_notebook_parameter(case: Bad):
    _raises(case)


# =============================================================================================
# The widgets' pure functions


def _maps() -> AttentionMaps:
    return AttentionMaps(["a", "b"], [np.full((2, 2, 2), 0.5)] * 3, False)


def _history_file(name: str, content: bytes) -> Path:
    path = _scratch() / "histories" / name / "history.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


WIDGETS = [
    Bad(
        "playground-seed-beyond-64-bits",
        lambda: sampling_options(0.8, 40, 0.95, 2**64),
        (str(2**64),),
        ("seed must be an integer in [0, 2**64)",),
    ),
    Bad("playground-negative-seed", lambda: sampling_options(0.8, 40, 0.95, -1), ("-1",), ("[0, 2**64)",)),
    Bad("playground-top-p-zero", lambda: sampling_options(0.8, 40, 0.0, 7), ("got 0.0",), ("top-p must be in (0, 1]",)),
    Bad("playground-top-p-nan", lambda: sampling_options(0.8, 40, math.nan, 7), ("nan",), ("in (0, 1]",)),
    Bad("playground-temperature-nan", lambda: sampling_options(math.nan, 40, 0.9, 7), ("nan",), ("a finite number",)),
    Bad("playground-negative-top-k", lambda: sampling_options(0.8, -1, 0.9, 7), ("-1",), ("an integer >= 0",)),
    Bad(
        "loss-curves-history-without-step",
        lambda: loss_curves({"run-a": pd.DataFrame({"loss": [1.0]})}),
        ("'run-a'", "['loss']"),
        ("no 'step' column", "expected a CSV with a 'step' column"),
    ),
    Bad(
        "loss-curves-text-in-a-loss-column",
        lambda: loss_curves({"run-a": pd.DataFrame({"step": [1, 2], "loss": ["1.0", "diverged"]})}),
        ("'run-a'", "['loss']"),
        ("expected numbers",),
    ),
    Bad("loss-curves-not-a-mapping", lambda: loss_curves([pd.DataFrame()]), ("list",), ("a mapping",)),
    Bad(
        "history-empty-file",
        lambda: read_history(_history_file("empty", b"")),
        ("empty", "history.csv"),
        ("expected a CSV",),
    ),
    Bad(
        "history-binary-file",
        lambda: read_history(_history_file("binary", b"\xff\xfe\x00\x81garbage\x00")),
        ("binary",),
        ("expected a CSV",),
    ),
    Bad(
        "history-without-step",
        lambda: read_history(_history_file("nostep", b"epoch,loss\n1,2.0\n").parent),
        ("nostep", "['epoch', 'loss']"),
        ("no 'step' column", "expected a CSV with a 'step' column"),
    ),
    Bad("history-missing", lambda: read_history("/nonexistent/run"), ("/nonexistent/run",), ("expected a CSV",)),
    Bad("attention-layer-out-of-range", lambda: _maps().head(3, 0), ("layer 3",), ("layer must be in 0..2",)),
    Bad("attention-head-as-text", lambda: _maps().head(0, "1"), ("head '1'",), ("head in 0..1",)),
    Bad("attention-empty-text", lambda: attention_maps(_model(), _tok(), ""), ("''",), ("expected some text",)),
    Bad("attention-text-none", lambda: attention_maps(_model(), _tok(), None), ("None",), ("a string",)),
    Bad(
        "explorer-heads-do-not-divide-the-width",
        lambda: explorer_config(GPTConfig.from_preset("gpt1"), n_head=7),
        ("n_head=7",),
        ("divisible",),
    ),
    Bad(
        "explorer-unknown-size",
        lambda: explorer_config(GPTConfig.from_preset("gpt1"), layers=3),
        ("['layers']",),
        ("expected some of",),
    ),
    Bad(
        "transform-example-missing-field",
        lambda: example_html("sentiment", {"text": "a fine play"}),
        ("['label']",),
        ("a classification example has",),
    ),
    Bad(
        "transform-example-label-outside-the-set",
        lambda: example_html("sentiment", {"text": "a fine play", "label": "positive"}),
        ("'positive'",),
        ("not in the label set",),
    ),
    Bad("transform-unknown-task", lambda: example_html("qa", {}), ("'qa'",), ("expected one of",)),
]


@pytest.mark.parametrize("case", [c.param() for c in WIDGETS])
def test_widget_function(case: Bad):
    _raises(case)


def test_loss_curve_viewer_shows_an_unreadable_history_as_a_message(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    pd.DataFrame({"step": [0, 1], "loss": [2.0, 1.5]}).to_csv(good / "history.csv", index=False)
    (bad / "history.csv").write_bytes(b"\xff\xfe\x00garbage")
    viewer = loss_curve_viewer({"good": good, "bad": bad})  # no exception
    assert "bad" in viewer.message.value and "expected a CSV" in viewer.message.value
    assert viewer.plotted is not None and set(viewer.plotted["run"]) == {"good"}


def test_the_catalogue_is_large_and_every_entry_names_its_value():
    cases = API + COMMANDS + PARAMETERS + WIDGETS
    assert len(cases) >= 80, len(cases)
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for case in cases:
        assert case.names and case.expects, case.id
        assert re.fullmatch(r"[0-9a-z-]+", case.id), case.id
