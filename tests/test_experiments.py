import pytest
import torch

from workbench import GPT
from workbench.experiments import PretrainSpec, pretrain
from workbench.experiments import pretraining as pretraining_module
from workbench.models.lstm import LSTMLanguageModel

TINY = dict(preset="gpt1-micro", steps=6, batch_size=4, n_checkpoints=3, device="cpu", precision="fp32")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))


def test_pretrain_keeps_log_spaced_checkpoints_and_caches(monkeypatch):
    run = pretrain(PretrainSpec(**TINY), progress=False)
    assert run.steps == [1, 2, 6]
    history = run.history
    assert history["step"].max() == 6 and "val_loss" in history
    model = run.load(2)
    assert isinstance(model, GPT) and not model.training
    with pytest.raises(ValueError, match=r"no checkpoint at step 3; kept steps: \[1, 2, 6\]"):
        run.load(3)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(pretraining_module, "train_language_model", no_training)
    again = pretrain(PretrainSpec(**TINY), progress=False)
    assert again.run_dir == run.run_dir
    assert torch.equal(again.load().wte.weight, run.load().wte.weight)
    with pytest.raises(AssertionError, match="trained again"):
        pretrain(PretrainSpec(**TINY), progress=False, seed=1)  # another config: a new run


def test_lstm_baseline_runs_through_the_same_runner():
    run = pretrain(PretrainSpec(**TINY, model="lstm"), progress=False)
    model = run.load()
    assert isinstance(model, LSTMLanguageModel)
    assert run.steps == [1, 2, 6]


def test_bad_specs_are_named():
    with pytest.raises(ValueError, match="unknown preset 'gpt5'"):
        PretrainSpec(preset="gpt5")
    with pytest.raises(ValueError, match=r"model must be one of \('gpt', 'lstm'\), got 'rnn'"):
        PretrainSpec(model="rnn")
    with pytest.raises(ValueError, match="steps.* must be positive, got steps=0"):
        PretrainSpec(steps=0)
