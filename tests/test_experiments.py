import dataclasses
import os
import time

import pytest
import torch

from workbench import GPT
from workbench.core.options import apply_overrides
from workbench.experiments import RECIPES, cached_pretraining_runs, pretrain
from workbench.experiments import pretraining as pretraining_module
from workbench.models.lstm import LSTMLanguageModel

pytestmark = pytest.mark.data

TINY = apply_overrides(
    RECIPES["cpu"].pretraining,
    {
        "preset": "gpt1-micro",
        "n_checkpoints": 3,
        "train": {
            "steps": 6,
            "batch_size": 4,
            "eval_every": 3,
            "eval_sequences": 8,
            "device": "cpu",
            "precision": "fp32",
            "progress": False,
        },
    },
)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))


def test_pretrain_keeps_log_spaced_checkpoints_and_caches(monkeypatch):
    run = pretrain(TINY, progress=False)
    assert TINY.checkpoint_steps() == (1, 2, 6) and run.steps == [1, 2, 6]
    history = run.history
    assert history["step"].max() == 6 and history["val_loss"].notna().sum() == 3  # steps 0, 3, 6
    model = run.load(2)
    assert isinstance(model, GPT) and not model.training
    with pytest.raises(ValueError, match=r"no checkpoint at step 3; kept steps: \[1, 2, 6\]"):
        run.load(3)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(pretraining_module, "train_language_model", no_training)
    again = pretrain(TINY, progress=False)
    assert again.run_dir == run.run_dir
    assert torch.equal(again.load().wte.weight, run.load().wte.weight)
    # progress bars are not part of the run: the same cache entry
    shown = apply_overrides(TINY, {"train": {"progress": True}})
    assert pretrain(shown, progress=False).run_dir == run.run_dir
    with pytest.raises(AssertionError, match="trained again"):
        pretrain(apply_overrides(TINY, {"train": {"seed": 1}}), progress=False)  # another config: a new run


def test_cached_runs_are_listed_by_spec():
    run = pretrain(TINY, progress=False)
    listed = cached_pretraining_runs()
    assert [r.run_dir for r in listed.values()] == [run.run_dir]
    ((name, found),) = listed.items()
    assert found.spec.key() == TINY.key()  # the cache keeps the key, progress bars left out
    assert name.startswith("gpt1-micro gpt, 6 x 4 (seed 0, ")


@pytest.mark.train
def test_lstm_baseline_runs_through_the_same_runner():
    run = pretrain(dataclasses.replace(TINY, model="lstm"), progress=False)
    model = run.load()
    assert isinstance(model, LSTMLanguageModel)
    assert run.steps == [1, 2, 6]


def test_bad_specs_are_named():
    with pytest.raises(ValueError, match=r"PretrainSpec.preset must be one of \[.*'gpt1-micro'.*\], got 'gpt5'"):
        dataclasses.replace(TINY, preset="gpt5")
    with pytest.raises(ValueError, match=r"PretrainSpec.model must be one of \['gpt', 'lstm'\], got 'rnn'"):
        apply_overrides(TINY, {"model": "rnn"})
    with pytest.raises(ValueError, match="TrainConfig.steps must be a positive integer, got 0"):
        apply_overrides(TINY, {"train": {"steps": 0}})
    with pytest.raises(ValueError, match=r"PretrainSpec.n_checkpoints must be a positive integer, got 0"):
        apply_overrides(TINY, {"n_checkpoints": 0})
    with pytest.raises(ValueError, match=r"PretrainSpec.dropout must be a number in \[0, 1\), got 1.0"):
        apply_overrides(TINY, {"dropout": 1.0})
    with pytest.raises(ValueError, match=r"PretrainSpec.train.checkpoint_steps must be empty .*set n_checkpoints"):
        apply_overrides(TINY, {"train": {"checkpoint_steps": (1, 2)}})
    with pytest.raises(ValueError, match=r"PretrainSpec has no option\(s\) \['steps'\]; valid: \["):
        apply_overrides(TINY, {"steps": 6})


def test_a_batch_that_does_not_split_leaves_no_cache_entry(tmp_path):
    """A refused batch / micro-batch pair used to leave an empty entry (config.json, no DONE) behind."""
    bad = apply_overrides(TINY, {"train": {"batch_size": 4, "micro_batch_size": 3}})
    with pytest.raises(ValueError, match="batch_size=4 is not a multiple of micro_batch_size=3"):
        pretrain(bad, progress=False)
    assert not (tmp_path / "cache" / "pretrain").exists()


def _sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_beside_takes_the_calls_no_worker_has_started():
    """Once its own call is done, this process runs the calls nobody has started (last first) instead of
    waiting while they queue for a busy worker; the results keep the calls' order."""
    from workbench.experiments.pool import beside

    me = os.getpid()
    results = beside(_sleep_then_pid, (0.2,), [(1.0,), (0.05,), (0.05,), (0.05,)], workers=2)
    assert results[0] == me and results[1] != me  # the worker (seconds to start: it imports torch) took one
    assert results[2:] == [me, me, me]
    assert beside(_sleep_then_pid, (0.0,), [(0.0,)], workers=1) == [me, me]  # one core: all here, in order


def test_pretrain_all_trains_side_by_side_and_records_the_machine():
    """Runs that fix their threads train at once in worker processes; each records where it trained,
    and the numbers are those of training one by one."""
    specs = [apply_overrides(TINY, {"train": {"threads": 1, "seed": seed}}) for seed in (0, 1)]
    together = pretraining_module.pretrain_all(specs, progress=False)
    assert [run.spec for run in together] == specs and all(run.steps == [1, 2, 6] for run in together)
    machine = together[1].machine()
    assert machine[["from_step", "device", "precision", "threads"]].values.tolist() == [[0, "cpu", "fp32", 1]]
    alone = pretrain(dataclasses.replace(specs[1], n_checkpoints=2), progress=False)  # another entry, same numbers
    assert torch.equal(alone.load().wte.weight, together[1].load().wte.weight)
