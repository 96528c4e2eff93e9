"""The ``workbench`` lm-evaluation-harness model against lm_eval's ``hf`` model on the exported checkpoint,
on local tasks (a task YAML and JSONL data written here; nothing is fetched)."""

from __future__ import annotations

import json
import math
import sysconfig
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.evaluation.scoring import score
from workbench.models.generation import generate_text
from workbench.training import checkpoint as ckpt

lm_eval = pytest.importorskip("lm_eval")
from lm_eval.tasks import TaskManager  # noqa: E402

from workbench.evaluation.harness import WorkbenchLM  # noqa: E402  (needs lm_eval)

TASKS = {
    "wb_choice": dict(
        output_type="multiple_choice",
        doc_to_text="{{context}}",
        doc_to_choice="{{choices}}",
        doc_to_target="{{label}}",
        metric_list=[{"metric": "acc"}, {"metric": "acc_norm"}],
    ),
    "wb_perplexity": dict(
        output_type="loglikelihood_rolling",
        doc_to_text="",
        doc_to_target="{{text}}",
        metric_list=[{"metric": m} for m in ("word_perplexity", "byte_perplexity", "bits_per_byte")],
    ),
    "wb_generate": dict(
        output_type="generate_until",
        doc_to_text="{{context}}",
        doc_to_target="{{answer}}",
        generation_kwargs={"until": ["\n", "."], "do_sample": False, "max_gen_toks": 8},
        metric_list=[{"metric": "exact_match"}],
    ),
}


def _documents() -> list[dict]:
    """Sixteen lines of Python's LICENSE (the text the tiny runs trained on), each split after its
    fourth word: the true rest against another line's rest, and the whole line."""
    lines = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_text().splitlines()
    lines = [" ".join(line.split()) for line in lines if 6 <= len(line.split()) and len(line) <= 60][:16]
    docs = []
    for i, line in enumerate(lines):
        words, other = line.split(), lines[(i + 5) % len(lines)].split()
        context, answer = " ".join(words[:4]), " ".join(words[4:])  # the task puts a space between
        choices = [answer, " ".join(other[4:])] if i % 2 else [" ".join(other[4:]), answer]
        docs.append(dict(context=context, answer=answer, choices=choices, label=i % 2, text=line))
    return docs


@pytest.fixture
def task_manager(tmp_path) -> TaskManager:
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in _documents()))
    for name, spec in TASKS.items():
        dataset = {"data_files": {"test": str(data)}, "cache_dir": str(tmp_path / "datasets")}
        task = dict(task=name, dataset_path="json", dataset_kwargs=dataset, test_split="test", **spec)
        (tmp_path / f"{name}.yaml").write_text(json.dumps(task))  # JSON is YAML
    return TaskManager(include_path=str(tmp_path), include_defaults=False)


def _evaluate(model, task_manager, tasks, **options) -> dict:
    return lm_eval.simple_evaluate(
        model=model, tasks=tasks, task_manager=task_manager, bootstrap_iters=0, log_samples=True, **options
    )


def _responses(result: dict, task: str) -> list:
    return [sample["filtered_resps"] for sample in sorted(result["samples"][task], key=lambda s: s["doc_id"])]


def _logprobs(result: dict, task: str) -> list[float]:
    """Every request's log-likelihood, in order (a choice's response is ``(logprob, greedy)``)."""
    return [float(r[0] if isinstance(r, (list, tuple)) else r) for resps in _responses(result, task) for r in resps]


def test_workbench_model_equals_lm_evals_hf_model_on_the_export(tokenized_runs, task_manager, tmp_path):
    run = tokenized_runs["gpt"]
    assert main(["export", str(run), str(tmp_path / "hf")]) == 0
    tasks = list(TASKS)
    ours = _evaluate("workbench", task_manager, tasks, model_args={"checkpoint": str(run)}, batch_size=8)
    theirs = _evaluate(
        "hf", task_manager, tasks, model_args={"pretrained": str(tmp_path / "hf")}, batch_size=8, device="cpu"
    )
    for task in tasks:
        metrics = {k: v for k, v in theirs["results"][task].items() if isinstance(v, float) and math.isfinite(v)}
        assert metrics, theirs["results"][task]
        for key, value in metrics.items():
            assert ours["results"][task][key] == pytest.approx(value, abs=1e-4, rel=1e-4), (task, key)
    for task in ("wb_choice", "wb_perplexity"):  # every log-likelihood, request by request
        assert _logprobs(ours, task) == pytest.approx(_logprobs(theirs, task), abs=1e-4)
    generated = _responses(ours, "wb_generate")
    assert generated == _responses(theirs, "wb_generate")
    assert sum(bool(text[0].strip()) for text in generated) >= len(generated) // 2  # not an empty comparison


def test_workbench_model_runs_an_lstm_checkpoint_and_names_what_it_cannot(
    tokenized_runs, task_manager, tmp_path, capsys
):
    run = tokenized_runs["lstm"]
    result = _evaluate("workbench", task_manager, ["wb_choice"], model_args={"checkpoint": str(run)}, batch_size=8)
    command = ["lm-eval", str(run), "--include-path", str(tmp_path), "--only-include-path", "--batch-size", "8"]
    assert main([*command, "--tasks", "wb_choice", "--output", str(tmp_path / "results.json")]) == 0
    assert "|wb_choice|" in capsys.readouterr().out.replace(" ", "")
    written = json.loads((tmp_path / "results.json").read_text())["wb_choice"]
    assert written["acc,none"] == result["results"]["wb_choice"]["acc,none"]
    assert main([*command, "--tasks", "wb_choice,wb_nothing"]) == 1
    assert f"['wb_nothing'] not found in {tmp_path}; expected task names" in capsys.readouterr().err
    checkpoint = ckpt.latest_checkpoint(run)
    model, tokenizer = ckpt.load_language_model(checkpoint), ckpt.checkpoint_tokenizer(checkpoint)
    samples = sorted(result["samples"]["wb_choice"], key=lambda s: s["doc_id"])
    requests = [tuple(arguments) for sample in samples for arguments in sample["arguments"]]
    assert len(requests) == 2 * len(_documents())
    expected = score(model, tokenizer, requests)["logprob"].tolist()
    assert _logprobs(result, "wb_choice") == pytest.approx(expected, abs=1e-5)
    generated = _responses(
        _evaluate(WorkbenchLM(checkpoint=run, batch_size=8), task_manager, ["wb_generate"]), "wb_generate"
    )
    alone = [  # each context on its own, unbatched, as the task asks: greedy, 8 tokens, up to a newline or a period
        [generate_text(model, tokenizer, doc["context"], 8, temperature=0, stop=["\n", "."])] for doc in _documents()
    ]
    assert generated == alone and any(text[0].strip() for text in alone)
    with pytest.raises(ValueError, match=r"generation options \['num_beams'\]"):
        WorkbenchLM(checkpoint=tokenized_runs["gpt"])._generation_options({"until": ["\n"], "num_beams": 4})
    with pytest.raises(ValueError, match="checkpoint=RUN_OR_CHECKPOINT, or model= and tokenizer= together"):
        WorkbenchLM()
