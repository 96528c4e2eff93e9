"""The explorer notebook's model policy and parameters (workbench.experiments.explorer), and timed()."""

import re

import pytest

from workbench.core.options import apply_overrides
from workbench.core.timing import timed
from workbench.experiments.explorer import Explorer, demo_spec
from workbench.experiments.pretraining import cached_pretraining_runs, pretrain
from workbench.experiments.recipes import RECIPES
from workbench.training.checkpoint import latest_checkpoint
from workbench.ui.widgets import loss_curve_viewer


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("model_source", "pretrained-somewhere", "one of ['auto', 'demo', 'untrained'] or an existing run directory"),
        ("demo_steps", 0, "a positive integer"),
        ("demo_steps", 2.5, "a positive integer"),
        ("seed", -1, "an integer >= 0"),
        ("prompt", None, "a string (empty: start from <|endoftext|>)"),
        ("max_new_tokens", True, "a positive integer"),
        ("attention_text", "  ", "a non-empty string"),
    ],
)
def test_from_params_names_the_parameter_the_value_and_what_was_expected(name, value, expected):
    with pytest.raises(ValueError, match=re.escape(f"{name} must be {expected}, got {value!r}")):
        Explorer.from_params(**{name: value})  # refused before any model is loaded or trained


def test_demo_spec_is_the_cpu_recipe_shortened():
    spec = demo_spec(300, seed=3)
    assert (spec.preset, spec.dropout, spec.n_checkpoints) == ("gpt2-mini", 0.0, 1)
    train = spec.train
    assert (train.steps, train.batch_size, train.lr, train.warmup_steps, train.seed) == (300, 8, 2e-3, 30, 3)
    assert train.schedule == RECIPES["cpu"].pretraining.train.schedule


def _tiny(steps, seed=0):
    return apply_overrides(
        RECIPES["cpu"].pretraining,
        {
            "preset": "gpt2-mini",
            "n_checkpoints": 1,
            "train": dict(
                steps=steps, batch_size=2, seed=seed, device="cpu", seq_len=16, eval_sequences=2, eval_every=1
            ),
        },
    )


@pytest.mark.data
def test_auto_prefers_the_longest_cached_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    pretrain(_tiny(3), progress=False)
    pretrain(_tiny(1), progress=False)
    explorer = Explorer.from_params("auto", prompt="", max_new_tokens=5)
    assert "pretrained for 3 updates (96 tokens)" in explorer.description
    assert "DEMO" not in explorer.description and len(explorer.runs) == 2
    assert explorer.model.config.vocab_size == explorer.tokenizer.vocab_size
    assert (explorer.prompt, explorer.max_new_tokens, explorer.seed) == ("", 5, 0)
    viewer = loss_curve_viewer(explorer.runs)
    assert len(set(viewer.plotted["run"])) == 2
    # Equal tokens: the lower validation loss wins.
    pretrain(_tiny(3, seed=1), progress=False)
    explorer = Explorer.from_params("auto")
    equal = [run for run in cached_pretraining_runs().values() if run.spec.train.steps == 3]
    assert len(equal) == 2
    best = min(equal, key=lambda run: float(run.history["val_loss"].dropna().iloc[-1]))
    assert f"(seed {best.spec.train.seed}, {best.run_dir.name[:6]})" in explorer.description


@pytest.mark.data
def test_other_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    demo = Explorer.from_params("demo", demo_steps=2)
    assert demo.description.startswith("a DEMO model") and "word salad" in demo.description
    run_dir = next(iter(demo.runs.values()))
    assert latest_checkpoint(run_dir) is not None
    from_path = Explorer.from_params(run_dir)
    assert "trained for 2 updates" in from_path.description and "on the corpus" in from_path.description
    untrained = Explorer.from_params("untrained")
    assert "UNTRAINED" in untrained.description and untrained.runs == {}
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        Explorer.from_params(tmp_path)


def test_a_run_that_records_no_tokenizer_is_refused(tmp_path, monkeypatch, license_tokens):
    """Raw token ids (.npy) carry no tokenizer: pairing the weights with the corpus BPE would turn any
    prompt into other words, silently."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    pretrain(demo_spec(1), run_dir=tmp_path / "run", tokens=(license_tokens, None), progress=False)
    with pytest.raises(ValueError, match=r"run/checkpoints/.* records no tokenizer: it was trained on train.npy"):
        Explorer.from_params(tmp_path / "run")


def test_timed_prints_and_keeps_the_seconds(capsys):
    with timed("step") as timing:
        pass
    assert 0 <= timing.seconds < 1 and re.fullmatch(r"step: [0-9.e-]+ s\n", capsys.readouterr().out)
    with pytest.raises(RuntimeError), timed("failing") as timing:
        raise RuntimeError
    assert timing.seconds >= 0 and capsys.readouterr().out.startswith("failing: ")
