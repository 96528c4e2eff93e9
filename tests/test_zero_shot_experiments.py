import math
import shutil

import pandas as pd
import pytest

from workbench import count_parameters
from workbench.core.options import apply_overrides
from workbench.evaluation.heuristics import HEURISTICS, VERBALIZERS
from workbench.experiments import RECIPES, PretrainRun, ZeroShotExperiment, pretrain
from workbench.experiments import zero_shot as zs
from workbench.ui import plots

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
REFERENCE = {"corrupted_sentence": 0.8, "sentiment": 0.7, "next_line": 0.5, "name_substitution": 0.6}
N = 4  # examples per split: enough to exercise every code path
# the 512-token test vocabulary splits every verbalizer word (tested in test_zeroshot.py)
pytestmark = [pytest.mark.filterwarnings("ignore:verbalizer"), pytest.mark.data, pytest.mark.train]


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def runs(cache):
    return pretrain(TINY, progress=False), pretrain(apply_overrides(TINY, {"model": "lstm"}), progress=False)


def test_curve_covers_every_checkpoint_of_both_models_and_is_cached(runs, monkeypatch):
    gpt_run, lstm_run = runs
    curve = zs.zero_shot_curve(gpt_run, lstm_run, max_examples=N, supervised=REFERENCE, progress=False)
    assert list(curve.columns) == zs.CURVE_COLUMNS
    variants = len(HEURISTICS) - 1 + len(VERBALIZERS)
    assert len(curve) == 2 * len(gpt_run.steps) * variants
    assert set(curve["model"]) == {"transformer", "lstm"}
    assert sorted(set(curve["step"])) == gpt_run.steps == [1, 2, 6]
    assert curve["accuracy"].between(0, 1).all() and (curve["n"] == N).all()
    expected = (curve["accuracy"] - curve["random"]) / (curve["task"].map(REFERENCE) - curve["random"])
    assert curve["relative"].tolist() == pytest.approx(expected.tolist())
    assert set(curve.loc[curve["task"] == "sentiment", "heuristic"]) == {f"sentiment ({v})" for v in VERBALIZERS}

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a cached checkpoint was evaluated again")

    monkeypatch.setattr(zs, "evaluate_model", no_evaluation)
    again = zs.zero_shot_curve(gpt_run, lstm_run, max_examples=N, supervised=REFERENCE, progress=False)
    pd.testing.assert_frame_equal(again, curve)
    # another reference only changes `relative`; another setting is evaluated afresh
    halved = zs.zero_shot_curve(gpt_run, lstm_run, max_examples=N, supervised=False, progress=False)
    assert halved["relative"].isna().all() and halved["accuracy"].tolist() == curve["accuracy"].tolist()
    with pytest.raises(AssertionError, match="evaluated again"):
        zs.zero_shot_curve(gpt_run, None, max_examples=N + 1, supervised=False, progress=False)


def test_supervised_reference_comes_from_the_layer_transfer_runs(runs, monkeypatch):
    calls = []

    def finetune_task(run, task, n_layers=None, seed=0, n_labelled=None, lm_weight=0.5, settings=None):
        calls.append((task, seed, n_labelled, settings.train.device))
        return dict(dev_accuracy=REFERENCE[task] - 0.1 * seed)

    monkeypatch.setattr(zs, "finetune_task", finetune_task)
    gpt_run, _ = runs
    cpu = RECIPES["cpu"].with_device("cpu")
    table = zs.supervised_reference(gpt_run, ["sentiment", "next_line"], cpu, seeds=(0, 1), progress=False)
    assert table[["task", "seed"]].values.tolist() == [
        ["sentiment", 0],
        ["sentiment", 1],
        ["next_line", 0],
        ["next_line", 1],
    ]
    assert table["dev_accuracy"].tolist() == pytest.approx([0.7, 0.6, 0.5, 0.4])
    assert table["n_labelled"].tolist() == [300, 300, 150, 150] == [cpu.labelled[t] for t in table["task"]]
    assert {n for _, _, n, _ in calls} == set(cpu.labelled.values()) and {d for *_, d in calls} == {"cpu"}
    calls.clear()
    zs.supervised_reference(gpt_run, ["corrupted_sentence"], cpu, progress=False)
    assert calls == [("corrupted_sentence", 0, max(cpu.labelled.values()), "cpu")]  # not every label
    calls.clear()
    # the recipe's fine-tuning settings and label counts are the ones used (the paper's: every label)
    zs.supervised_reference(gpt_run, ["sentiment"], RECIPES["paper"], progress=False)
    assert calls == [("sentiment", 0, None, "auto")]
    # the experiment passes its recipe and seeds
    experiment = ZeroShotExperiment.from_params("cpu", heuristics=["sentiment"], supervised_seeds=[1], device="cpu")
    calls.clear()
    assert experiment.supervised_reference(gpt_run, progress=False)["dev_accuracy"].tolist() == pytest.approx([0.6])
    assert calls == [("sentiment", 1, 300, "cpu")]
    accuracy = zs.supervised_accuracy(gpt_run, ["sentiment"], seeds=(0, 1), progress=False)
    assert accuracy == pytest.approx({"sentiment": 0.65})
    curve = zs.zero_shot_curve(gpt_run, heuristics=["multiple_choice"], max_examples=N, progress=False)
    assert (curve["supervised"] == REFERENCE["next_line"]).all()


def test_relative_performance():
    assert zs.relative_performance(0.75, 0.5, 1.0) == 0.5
    assert zs.relative_performance(0.4, 0.5, 1.0) == pytest.approx(-0.2)
    assert math.isnan(zs.relative_performance(0.7, 0.5, 0.5))  # the reference is no better than chance
    assert math.isnan(zs.relative_performance(0.56, 0.5, 0.505))  # barely above chance: a ratio of 12 means nothing
    assert math.isnan(zs.relative_performance(0.7, 0.5, math.nan))


def test_bad_input_is_named(runs, tmp_path):
    gpt_run, lstm_run = runs
    with pytest.raises(ValueError, match=r"no checkpoint at steps \[3\]; kept steps: \[1, 2, 6\]"):
        zs.zero_shot_curve(gpt_run, steps=[3], supervised=False, progress=False)
    with pytest.raises(ValueError, match="steps is empty"):
        zs.zero_shot_curve(gpt_run, steps=[], supervised=False, progress=False)
    with pytest.raises(ValueError, match="unknown heuristics \\['winograd'\\]"):
        zs.zero_shot_curve(gpt_run, heuristics=["winograd"], supervised=False, progress=False)
    with pytest.raises(ValueError, match="heuristics is empty"):
        zs.zero_shot_curve(gpt_run, heuristics=[], supervised=False, progress=False)
    with pytest.raises(ValueError, match="EvaluationSettings.max_examples must be None or a positive integer, got 0"):
        zs.zero_shot_curve(gpt_run, max_examples=0, supervised=False, progress=False)
    with pytest.raises(ValueError, match="EvaluationSettings.batch_size must be a positive integer, got 0"):
        zs.zero_shot_curve(gpt_run, batch_size=0, supervised=False, progress=False)
    with pytest.raises(ValueError, match=r"EvaluationSettings.split must be one of \['dev', 'test'\], got 'train'"):
        zs.zero_shot_curve(gpt_run, split="train", supervised=False, progress=False)
    with pytest.raises(ValueError, match="no accuracy for tasks \\['next_line'\\]"):
        zs.zero_shot_curve(gpt_run, heuristics=["multiple_choice"], supervised={"sentiment": 0.7}, progress=False)
    with pytest.raises(ValueError, match="expected a GPT run and an LSTM run"):
        zs.zero_shot_curve(gpt_run, gpt_run, supervised=False, progress=False)
    other_tokens = PretrainRun(
        apply_overrides(TINY, {"preset": "gpt1-mini", "model": "lstm"}), tmp_path / "never-trained"
    )
    with pytest.raises(ValueError, match="same tokens"):
        zs.zero_shot_curve(gpt_run, other_tokens, supervised=False, progress=False)
    # a run whose checkpoints are gone: an empty checkpoint list
    emptied = PretrainRun(lstm_run.spec, tmp_path / "emptied")
    shutil.copytree(lstm_run.run_dir, emptied.run_dir, ignore=shutil.ignore_patterns("step-*"))
    assert emptied.steps == []
    with pytest.raises(ValueError, match="the lstm run .* has no checkpoints; train it first"):
        zs.zero_shot_curve(gpt_run, emptied, supervised=False, progress=False)


def test_scaling_trains_each_size_on_the_same_tokens(runs):
    gpt_run, _ = runs
    spec = gpt_run.spec
    table = zs.zero_shot_scaling(
        spec,
        presets=("gpt2-micro", "gpt1-micro"),
        heuristics=["multiple_choice", "substitution"],
        max_examples=N,
        supervised=REFERENCE,
        progress=False,
    )
    assert list(table.columns) == zs.SCALING_COLUMNS
    assert table["preset"].tolist() == ["gpt2-micro", "gpt2-micro", "gpt1-micro", "gpt1-micro"]
    assert (table["step"] == spec.train.steps).all() and table["val_loss"].notna().all()
    assert table["parameters"].iloc[0] > table["parameters"].iloc[2]  # pre-LN adds a final LayerNorm
    # the shared run is reused, not retrained: its evaluation equals the curve's last checkpoint
    curve = zs.zero_shot_curve(
        gpt_run,
        heuristics=["multiple_choice", "substitution"],
        max_examples=N,
        supervised=REFERENCE,
        progress=False,
        steps=[6],
    )
    assert table[table["preset"] == "gpt1-micro"]["accuracy"].tolist() == curve["accuracy"].tolist()
    with pytest.raises(ValueError, match="share a vocabulary"):
        zs.scaling_specs(spec, ["gpt1-micro", "gpt1-mini"])
    with pytest.raises(ValueError, match="unknown presets \\['gpt5'\\]"):
        zs.scaling_specs(spec, ["gpt5"])
    with pytest.raises(ValueError, match="presets is empty"):
        zs.scaling_specs(spec, [])
    with pytest.raises(ValueError, match="supervised must be False or a mapping"):
        zs.zero_shot_scaling(spec, presets=("gpt1-micro",), supervised=None, progress=False)
    with pytest.raises(ValueError, match="scaling runs are Transformers"):
        zs.scaling_specs(apply_overrides(spec, {"model": "lstm"}), ["gpt1-micro"])
    assert RECIPES["cpu"].ladder == ("gpt2-nano", "gpt2-tiny", "gpt2-slim", "gpt2-mini")
    assert RECIPES["gpu"].ladder == RECIPES["paper"].ladder == ("gpt1-nano", "gpt1-tiny", "gpt1-slim", "gpt1-mini")
    for recipe in RECIPES.values():
        ladder = zs.scaling_specs(recipe.pretraining, recipe.ladder)
        sizes = [count_parameters(s.gpt_config) for s in ladder]
        assert sizes == sorted(sizes) and len(set(sizes)) == 4
        assert all(s.train == recipe.pretraining.train for s in ladder)  # same tokens, steps and optimiser
    cpu = RECIPES["cpu"]
    # the shared run is a rung, read from the cache
    assert cpu.pretraining in zs.scaling_specs(cpu.pretraining, cpu.ladder)


def test_figures_are_written(tmp_path):
    rows = []
    for model in ("transformer", "lstm"):
        for step in (1, 10, 100):
            for task, heuristic in (("corrupted_sentence", "acceptability"), ("next_line", "multiple_choice")):
                random = 0.5 if task == "corrupted_sentence" else 0.25
                accuracy = random + 0.001 * step * (2 if model == "transformer" else 1)
                rows.append(
                    dict(
                        model=model,
                        step=step,
                        task=task,
                        heuristic=heuristic,
                        accuracy=accuracy,
                        relative=zs.relative_performance(accuracy, random, 0.9),
                        random=random,
                        supervised=0.9,
                        n=10,
                    )
                )
    curve = pd.DataFrame(rows)[zs.CURVE_COLUMNS]
    fig = plots.plot_zero_shot(curve)
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].lines}
    assert styles["transformer: acceptability"] == "-" and styles["lstm: acceptability"] == "--"
    png, csv = plots.save_figure(fig, curve, "zero_shot", tmp_path)
    assert png.stat().st_size > 0 and pd.read_csv(csv).columns.tolist() == zs.CURVE_COLUMNS
    scaling = pd.DataFrame(
        [
            dict(
                preset=p,
                parameters=n,
                step=10,
                val_loss=5.0,
                task="next_line",
                heuristic="multiple_choice",
                accuracy=a,
                relative=math.nan,
                random=0.25,
                supervised=math.nan,
                n=10,
            )
            for p, n, a in (("a", 1e5, 0.26), ("b", 1e6, 0.3))
        ]
    )
    assert plots.plot_zero_shot_scaling(scaling).axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="empty"):
        plots.plot_zero_shot(curve.iloc[:0])
    with pytest.raises(ValueError, match="value must be 'relative' or 'accuracy'"):
        plots.plot_zero_shot(curve, value="loss")


def test_notebook_parameters_are_checked_before_any_work():
    experiment = ZeroShotExperiment.from_params("cpu")
    cpu = RECIPES["cpu"]
    assert experiment.recipe == cpu and experiment.spec == cpu.pretraining
    assert experiment.spec.model == "gpt" and experiment.lstm_spec.model == "lstm"
    assert experiment.lstm_spec.preset == experiment.spec.preset
    assert experiment.lstm_spec.train == experiment.spec.train  # same tokens, steps and optimiser
    assert experiment.tasks == ("corrupted_sentence", "sentiment", "next_line", "name_substitution")
    assert experiment.recipe.ladder == cpu.ladder and experiment.supervised_seeds == (0,)
    assert experiment.evaluation == cpu.evaluation
    chosen = ZeroShotExperiment.from_params(
        "cpu", heuristics="sentiment", scaling_presets=[], max_examples=None, split="dev", batch_size=8, device="cpu"
    )
    assert chosen.variants == [("sentiment", {"verbalizer": v}) for v in VERBALIZERS]
    assert chosen.recipe.ladder == () and chosen.scaling({}) is None
    assert (chosen.evaluation.max_examples, chosen.evaluation.split, chosen.evaluation.batch_size) == (None, "dev", 8)
    assert chosen.spec.train.device == "cpu"
    assert ZeroShotExperiment.from_params("paper").spec == RECIPES["paper"].pretraining
    bad = [
        (dict(scale="tpu"), r"unknown recipe 'tpu': expected one of \['cpu', 'gpu', 'paper'\]"),
        (
            dict(heuristics=["winograd"]),
            r"ZeroShotExperiment.heuristics must be a non-empty list of items each "
            r"one of \[.*\], got \('winograd',\)",
        ),
        (dict(heuristics=[]), r"ZeroShotExperiment.heuristics must be a non-empty list .*, got \(\)"),
        (dict(max_examples=0), "EvaluationSettings.max_examples must be None or a positive integer, got 0"),
        (dict(split="train"), r"EvaluationSettings.split must be one of \['dev', 'test'\], got 'train'"),
        (dict(supervised_seeds=[]), r"ZeroShotExperiment.supervised_seeds must be a non-empty list .*, got \(\)"),
        (dict(supervised_seeds=[-1]), r"ZeroShotExperiment.supervised_seeds must be .* >= 0, got \(-1,\)"),
        (dict(scaling_presets=["gpt1-micro", "gpt1-mini"]), "share a vocabulary"),
        (dict(scaling_presets=["gpt5"]), r"Recipe.ladder must be a list of items each one of .*, got \('gpt5',\)"),
        (dict(pretrained=""), "ZeroShotExperiment.pretrained must be None or a non-empty string, got ''"),
        (dict(device="tpu"), "device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got 'tpu'"),
        (dict(batch_size=0), "EvaluationSettings.batch_size must be a positive integer, got 0"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            ZeroShotExperiment.from_params(**options)
