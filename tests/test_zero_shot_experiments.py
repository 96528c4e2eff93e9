import dataclasses
import math
import shutil

import pandas as pd
import pytest

from workbench.core.options import apply_overrides
from workbench.evaluation import auc
from workbench.evaluation.heuristics import HEURISTICS, OUTCOME_COLUMNS
from workbench.experiments import RECIPES, EvaluationSettings, PretrainRun, ZeroShotExperiment, pretrain
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
SMALL = EvaluationSettings(split="test", max_examples=N, batch_size=32)
READOUTS = sum(len(h.readouts) for h in HEURISTICS.values())
# the 512-token test vocabulary splits every verbalizer word (tested in test_zeroshot.py)
pytestmark = [pytest.mark.filterwarnings("ignore:verbalizer"), pytest.mark.data, pytest.mark.train]


TINY_RECIPE = apply_overrides(RECIPES["cpu"], {"pretraining": TINY, "ladder": ("gpt2-micro", "gpt1-micro")})


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def runs(cache):
    return pretrain(TINY, progress=False), pretrain(apply_overrides(TINY, {"model": "lstm"}), progress=False)


def test_outcomes_cover_every_checkpoint_of_both_models_and_are_cached(runs, monkeypatch):
    gpt_run, lstm_run = runs
    experiment = ZeroShotExperiment.from_params(TINY_RECIPE, max_examples=N, device="cpu")
    outcomes = experiment.outcomes(gpt_run, lstm_run, progress=False)
    assert set(OUTCOME_COLUMNS) <= set(outcomes.columns)
    assert len(outcomes) == 2 * len(gpt_run.steps) * READOUTS * N  # SLOR included: the unigram model is given
    curve = experiment.curve(outcomes, REFERENCE)
    assert list(curve.columns) == zs.CURVE_COLUMNS
    assert len(curve) == 2 * len(gpt_run.steps) * READOUTS
    assert set(curve["model"]) == {"transformer", "lstm"}
    assert sorted(set(curve["step"])) == gpt_run.steps == [1, 2, 6]
    assert curve["tokens"].tolist() == [s * 4 * 64 for s in curve["step"]]  # batch 4 x gpt1-micro's window
    assert curve["val_loss"].between(0, 10).all() and (curve["n"] == N).all()
    assert ((curve["ci_low"] <= curve["accuracy"]) & (curve["accuracy"] <= curve["ci_high"])).all()
    accuracy = curve[curve["metric"] == "accuracy"]
    supervised = accuracy["task"].map(REFERENCE)
    expected = (accuracy["accuracy"] - accuracy["random"]) / (supervised - accuracy["random"])
    expected = expected.where(accuracy["accuracy"] <= supervised)  # blank above the fine-tuned reference
    assert accuracy["relative"].tolist() == pytest.approx(expected.tolist(), nan_ok=True)
    assert (curve["constant"] == (curve["predicted_share"] > 0.9)).all()
    assert curve.loc[curve["metric"] == "auc", "relative"].isna().all()
    table = zs.accuracy_table(curve, ["model", "step"])
    assert table.shape == (2 * len(gpt_run.steps), READOUTS)
    first = curve.iloc[0]
    band = (first["ci_high"] - first["ci_low"]) / 2
    cell = table.loc[(first["model"], first["step"]), (first["heuristic"], first["readout"])]
    assert cell == f"{first['accuracy']:.3f} ±{band:.3f}"
    trends = experiment.trends(outcomes)
    assert list(trends.columns) == zs.TREND_COLUMNS and len(trends) == 2 * READOUTS
    assert set(trends["verdict"]) <= {"rises", "falls", "flat", "constant"}
    assert (trends["p_holm"] >= trends["p"]).all()
    comparison = experiment.lstm_comparison(outcomes)
    assert (comparison["p_holm"] >= comparison["p"]).all()
    losses = outcomes[["model", "step", "val_loss"]].drop_duplicates()
    final = losses[losses["step"] == 6].set_index("model")["val_loss"]
    worse = final.idxmax()
    other = losses[losses["model"] != worse]
    nearest = other.iloc[(other["val_loss"] - final[worse]).abs().argmin()]["step"]
    better_step = "lstm_step" if worse == "transformer" else "transformer_step"
    at_tokens = comparison[comparison["match"].str.startswith("equal tokens")]
    assert (
        len(at_tokens) == READOUTS
        and (at_tokens["transformer_step"] == 6).all()
        and (at_tokens["lstm_step"] == 6).all()
    )
    if nearest == 6:
        assert comparison["match"].unique().tolist() == ["equal tokens and validation loss"]
    else:
        at_loss = comparison[comparison["match"] == "equal validation loss"]
        assert len(at_loss) == READOUTS and (at_loss[better_step] == nearest).all()
    text = experiment.findings(trends, outcomes)
    assert "transformer, update 1 -> 6" in text and "GPT-1 Figure 2 (right)" in text and "LSTM does worse" in text
    assert "Every task's fine-tuned reference beats chance" in experiment.findings(trends, outcomes, None, REFERENCE)
    weak = experiment.findings(trends, outcomes, None, {**REFERENCE, "next_line": 0.2})
    assert "which 3 of 4 tasks have here" in weak and "next_line 0.200 (chance 0.25)" in weak

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a cached checkpoint was evaluated again")

    monkeypatch.setattr(zs, "score_outcomes", no_evaluation)
    again = experiment.outcomes(gpt_run, lstm_run, progress=False)
    pd.testing.assert_frame_equal(again, outcomes)
    # another reference only changes `relative`; another setting is evaluated afresh
    unreferenced = experiment.curve(outcomes, None)
    assert unreferenced["relative"].isna().all() and unreferenced["accuracy"].tolist() == curve["accuracy"].tolist()
    with pytest.raises(AssertionError, match="evaluated again"):
        zs.zero_shot_outcomes(gpt_run, None, evaluation=SMALL.__class__("test", N + 1, 32), progress=False)


def test_supervised_reference_comes_from_the_layer_transfer_runs(runs, monkeypatch):
    calls = []

    def finetune_all(run, jobs, settings=None, progress=True, desc=""):
        calls.extend((task, seed, n, settings.train.device) for task, seed, n in jobs)
        return [dict(dev_accuracy=REFERENCE[task] - 0.1 * seed) for task, seed, _ in jobs]

    monkeypatch.setattr(zs, "finetune_all", finetune_all)
    gpt_run, _ = runs
    # label counts for two tasks only, so that a task the recipe does not list takes the largest count
    cpu = dataclasses.replace(RECIPES["cpu"].with_device("cpu"), labelled={"sentiment": 300, "next_line": 150})
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
    assert calls == [("sentiment", 1, RECIPES["cpu"].labelled["sentiment"], "cpu")]
    table = zs.supervised_reference(gpt_run, ["sentiment"], seeds=(0, 1), progress=False)
    assert zs.reference_accuracy(table) == pytest.approx({"sentiment": 0.65})


def test_relative_performance():
    assert zs.relative_performance(0.75, 0.5, 1.0) == 0.5
    assert zs.relative_performance(0.4, 0.5, 1.0) == pytest.approx(-0.2)
    assert math.isnan(zs.relative_performance(0.7, 0.5, 0.5))  # the reference is no better than chance
    assert math.isnan(zs.relative_performance(0.56, 0.5, 0.505))  # barely above chance: a ratio of 12 means nothing
    assert math.isnan(zs.relative_performance(0.7, 0.5, math.nan))
    assert math.isnan(zs.relative_performance(0.8, 0.5, 0.7))  # zero-shot above the fine-tuned reference


def test_bad_input_is_named(runs, tmp_path):
    gpt_run, lstm_run = runs
    with pytest.raises(ValueError, match=r"no checkpoint at steps \[3\]; kept steps: \[1, 2, 6\]"):
        zs.zero_shot_outcomes(gpt_run, steps=[3], evaluation=SMALL, progress=False)
    with pytest.raises(ValueError, match="steps is empty"):
        zs.zero_shot_outcomes(gpt_run, steps=[], evaluation=SMALL, progress=False)
    with pytest.raises(ValueError, match=r"heuristics must be a non-empty list .*, got \('winograd',\)"):
        zs.zero_shot_outcomes(gpt_run, heuristics=["winograd"], evaluation=SMALL, progress=False)
    with pytest.raises(ValueError, match="heuristics is empty"):
        zs.zero_shot_outcomes(gpt_run, heuristics=[], evaluation=SMALL, progress=False)
    with pytest.raises(ValueError, match="reference accuracies must be numbers in \\[0, 1\\]"):
        zs.add_relative(pd.DataFrame(dict(task=["next_line"])), {"next_line": 7})
    with pytest.raises(ValueError, match="expected a GPT run and an LSTM run"):
        zs.zero_shot_outcomes(gpt_run, gpt_run, evaluation=SMALL, progress=False)
    other_tokens = PretrainRun(
        apply_overrides(TINY, {"preset": "gpt1-mini", "model": "lstm"}), tmp_path / "never-trained"
    )
    with pytest.raises(ValueError, match="same tokens"):
        zs.zero_shot_outcomes(gpt_run, other_tokens, evaluation=SMALL, progress=False)
    # a run whose checkpoints are gone: an empty checkpoint list
    emptied = PretrainRun(lstm_run.spec, tmp_path / "emptied")
    shutil.copytree(lstm_run.run_dir, emptied.run_dir, ignore=shutil.ignore_patterns("step-*"))
    assert emptied.steps == []
    with pytest.raises(ValueError, match="the lstm run .* has no checkpoints; train it first"):
        zs.zero_shot_outcomes(gpt_run, emptied, evaluation=SMALL, progress=False)


def test_scaling_trains_each_size_on_the_same_tokens(runs):
    gpt_run, _ = runs
    spec = gpt_run.spec
    heuristics = ["multiple_choice", "substitution"]
    outcomes = zs.scaling_outcomes(spec, ("gpt2-micro", "gpt1-micro"), heuristics, SMALL, progress=False)
    experiment = ZeroShotExperiment.from_params(TINY_RECIPE, heuristics=heuristics, max_examples=N, device="cpu")
    table = experiment.scaling(outcomes, REFERENCE)
    assert list(table.columns) == zs.SCALING_COLUMNS
    assert table["preset"].tolist() == ["gpt1-micro"] * 4 + ["gpt2-micro"] * 4  # by parameters
    from workbench.models.config import PRESETS
    from workbench.models.params import count_parameters, non_embedding_parameters

    for preset, rows in table.groupby("preset"):
        config = spec.gpt_config.__class__.from_preset(preset)
        embeddings = config.vocab_size * config.d_model + config.n_ctx * config.d_model
        assert (rows["non_embedding_params"] == non_embedding_parameters(config)).all()
        assert non_embedding_parameters(config) == count_parameters(config) - embeddings
    assert (table["step"] == spec.train.steps).all() and table["val_loss"].notna().all()
    # the shared run is reused, not retrained: its evaluation equals the curve's last checkpoint
    last = zs.zero_shot_outcomes(gpt_run, heuristics=heuristics, evaluation=SMALL, steps=[6], progress=False)
    shared = outcomes[outcomes["preset"] == "gpt1-micro"]
    assert shared["correct"].tolist() == last["correct"].tolist()
    trends = experiment.scaling_trends(outcomes)
    assert len(trends) == 4 and set(trends["model"]) == {"ladder"}
    # two runs of a rung: one row per run in the table, the trend's value at that size their mean
    seeded = zs.scaling_outcomes(spec, ("gpt2-micro", "gpt1-micro"), heuristics, SMALL, runs=(2, 1), progress=False)
    assert seeded.groupby("preset")["seed"].unique().map(sorted).to_dict() == {
        "gpt2-micro": [spec.train.seed, spec.train.seed + 1],
        "gpt1-micro": [spec.train.seed],
    }
    seeded_table = experiment.scaling(seeded, REFERENCE)
    assert len(seeded_table) == len(table) + 4 and seeded_table["seed"].notna().all()
    readout = ["heuristic", "readout"]
    seeded_trends = experiment.scaling_trends(seeded).set_index(readout)
    smallest = seeded_table[seeded_table["preset"] == "gpt1-micro"].set_index(readout)
    assert seeded_trends["first"].to_dict() == pytest.approx(smallest["accuracy"].to_dict())
    largest = seeded_table[seeded_table["preset"] == "gpt2-micro"].groupby(readout)["accuracy"].mean()
    assert seeded_trends["last"].to_dict() == pytest.approx(largest.to_dict())
    with pytest.raises(ValueError, match=r"runs has 1 counts \[2\] for 2 presets"):
        zs.scaling_outcomes(spec, ("gpt2-micro", "gpt1-micro"), heuristics, SMALL, runs=(2,), progress=False)
    # early stopping: the kept checkpoint of lowest validation loss instead of the last
    best = dataclasses.replace(SMALL, checkpoint="best")
    chosen = zs.scaling_outcomes(spec, ("gpt1-micro",), heuristics, best, progress=False)
    losses = {step: zs.checkpoint_val_loss(gpt_run, step) for step in gpt_run.steps}
    assert set(chosen["step"]) == {min(losses, key=losses.get)}
    with pytest.raises(ValueError, match="share a vocabulary"):
        zs.scaling_specs(spec, ["gpt1-micro", "gpt1-mini"])
    with pytest.raises(ValueError, match="unknown presets \\['gpt5'\\]"):
        zs.scaling_specs(spec, ["gpt5"])
    with pytest.raises(ValueError, match="presets is empty"):
        zs.scaling_specs(spec, [])
    with pytest.raises(ValueError, match="scaling runs are Transformers"):
        zs.scaling_specs(apply_overrides(spec, {"model": "lstm"}), ["gpt1-micro"])
    for recipe in RECIPES.values():
        ladder = zs.scaling_specs(recipe.pretraining, recipe.ladder)
        sizes = [count_parameters(s.gpt_config) for s in ladder]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes) >= 3
        assert all(s.train == recipe.pretraining.train for s in ladder)  # same tokens, steps and optimiser
    cpu = RECIPES["cpu"]
    # issue 23: at least 5 sizes over at least 1.5 decades of N, the cheapest rung with 2 runs
    for recipe in (cpu, RECIPES["gpu"]):
        n = [non_embedding_parameters(PRESETS[p]) for p in recipe.ladder]
        assert len(n) >= 5 and math.log10(max(n) / min(n)) >= 1.5
    assert cpu.rung_runs() == (2, 1, 1, 1, 1) and RECIPES["gpu"].rung_runs() == (3,) * 5
    # the shared run is a rung, read from the cache
    assert cpu.pretraining in zs.scaling_specs(cpu.pretraining, cpu.ladder)


def test_figures_are_written(runs, tmp_path):
    gpt_run, lstm_run = runs
    outcomes = zs.zero_shot_outcomes(gpt_run, lstm_run, evaluation=SMALL, progress=False)
    experiment = ZeroShotExperiment.from_params(TINY_RECIPE, max_examples=N, device="cpu")
    curve = experiment.curve(outcomes, REFERENCE)
    fig = plots.plot_zero_shot(curve)
    panels = len(curve[["heuristic", "metric"]].drop_duplicates())  # accuracy and AUC on their own axes
    assert len(fig.axes) == 2 * panels and fig.axes[0].get_xscale() == "log"
    assert fig.axes[panels].xaxis_inverted()  # validation loss: lower to the right
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].lines}
    assert styles["transformer: paper"] == "-" and styles["lstm: paper"] == "--"
    png, csv = plots.save_figure(fig, curve, "zero_shot", tmp_path)
    assert png.stat().st_size > 0 and pd.read_csv(csv).columns.tolist() == zs.CURVE_COLUMNS
    scaling = curve[curve["model"] == "transformer"].assign(
        preset="a", parameters=1e5, non_embedding_params=3e4, seed=0
    )
    assert plots.plot_zero_shot_scaling(scaling).axes[0].get_xscale() == "log"
    # the per-example outcomes saved beside the figures give back every accuracy of the curve
    audit = zs.audit_table(outcomes)
    assert list(audit.columns) == zs.AUDIT_COLUMNS and len(audit) == len(curve)
    for row in audit.itertuples():
        point = curve[(curve["model"] == row.model) & (curve["step"] == row.step) & (curve["readout"] == row.readout)]
        point = point[point["heuristic"] == row.heuristic]
        if row.metric == "accuracy":
            assert sum(map(int, row.correct)) / row.n == pytest.approx(point["accuracy"].item())
        else:
            scores = [float(v) for v in row.score.split()]
            assert auc(scores, [int(c) for c in row.label]) == pytest.approx(point["accuracy"].item(), abs=1e-6)
    with pytest.raises(ValueError, match="empty"):
        plots.plot_zero_shot(curve.iloc[:0])


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
    assert chosen.heuristics == ("sentiment",)
    assert chosen.recipe.ladder == () and chosen.scaling_outcomes() is None
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


def test_the_gpu_recipe_runs_end_to_end_at_a_tiny_size():
    """The GPU recipe's design (gpt2-mini, the LSTM, a four-size ladder read at its best checkpoint)
    runs on the CPU when cut to three updates of batch 4, four examples and one pretraining run per
    model (averaging runs: the next test); its real run needs a GPU."""
    assert RECIPES["gpu"].pretraining_runs == 3
    tiny_batches = apply_overrides(RECIPES["gpu"], {"pretraining": {"train": {"batch_size": 4, "eval_sequences": 8}}})
    experiment = ZeroShotExperiment.from_params(
        tiny_batches, pretrain_steps=3, max_examples=N, device="cpu", pretraining_runs=1
    )
    assert experiment.spec.preset == "gpt2-mini" and experiment.evaluation.checkpoint == "best"
    gpt_run, lstm_run = experiment.pretraining(progress=False)
    assert gpt_run.steps == lstm_run.steps == [1, 2, 3]
    outcomes = experiment.outcomes(gpt_run, lstm_run, progress=False)
    trends = experiment.trends(outcomes)
    assert len(trends) == 2 * READOUTS
    scaling = experiment.scaling_outcomes(progress=False)
    assert set(scaling["preset"]) == set(RECIPES["gpu"].ladder)
    for preset, rows in scaling.groupby("preset"):
        run = pretrain(dataclasses.replace(experiment.spec, preset=preset), progress=False)
        losses = {step: zs.checkpoint_val_loss(run, step) for step in run.steps}
        assert set(rows["step"]) == {min(losses, key=losses.get)}


def test_several_pretraining_runs_are_averaged_per_example(runs):
    gpt_run, lstm_run = runs
    heuristics = ["acceptability", "substitution"]
    one = ZeroShotExperiment.from_params(TINY_RECIPE, heuristics=heuristics, max_examples=N, device="cpu")
    two = ZeroShotExperiment.from_params(
        TINY_RECIPE, heuristics=heuristics, max_examples=N, device="cpu", pretraining_runs=2
    )
    single, pooled = one.outcomes(gpt_run, lstm_run, progress=False), two.outcomes(gpt_run, lstm_run, progress=False)
    assert list(pooled.columns) == list(single.columns) and len(pooled) == len(single)
    # the second run is the same spec with the next training seed, trained (and cached) on demand
    second = pretrain(zs.with_seed(gpt_run.spec, 1), progress=False)
    assert second.spec.train.seed == gpt_run.spec.train.seed + 1 and second.run_dir != gpt_run.run_dir
    other = zs.zero_shot_outcomes(second, None, heuristics, SMALL, unigram=one.unigram_log_probs(), progress=False)
    mine = pooled[pooled["model"] == "transformer"].reset_index(drop=True)
    expected = (single[single["model"] == "transformer"]["correct"].to_numpy() + other["correct"].to_numpy()) / 2
    assert mine["correct"].tolist() == pytest.approx(expected.tolist())
    assert set(mine["correct"]) <= {0, 0.5, 1}
    assert len(two.trends(pooled)) == 2 * 5  # 2 models x 5 readouts
    ladder = two.scaling_outcomes(progress=False)  # every rung twice: the ladder keeps one row per run
    assert set(ladder["preset"]) == set(TINY_RECIPE.ladder) and len(ladder) == 2 * len(one.scaling_outcomes(False))
    assert set(ladder["seed"]) == {gpt_run.spec.train.seed, gpt_run.spec.train.seed + 1}
    with pytest.raises(ValueError, match="Recipe.pretraining_runs must be a positive integer, got 0"):
        ZeroShotExperiment.from_params("cpu", pretraining_runs=0)


def test_loss_by_position_averages_to_the_validation_loss_and_is_cached(runs, monkeypatch, tmp_path):
    """Each position's loss over the windows, averaged over positions, is the trainer's validation
    loss on the same windows; the table has one row per model, seed and position, inside its band."""
    import numpy as np
    import torch

    from workbench.training.language_model import TokenEvaluator, default_token_files, open_token_file

    gpt_run, lstm_run = runs
    losses = zs.position_losses(gpt_run, windows=16)
    n_ctx = TINY.gpt_config.n_ctx
    assert losses.shape == (16, n_ctx)
    _, val_path = default_token_files(TINY.gpt_config.vocab_size, seed=TINY.data_seed, progress=False)
    evaluator = TokenEvaluator(open_token_file(val_path, TINY.gpt_config.vocab_size)[0], n_ctx, 16, 4)
    with torch.no_grad():
        expected = evaluator(gpt_run.load(gpt_run.steps[-1]).eval())["val_loss"]
    assert losses.mean() == pytest.approx(expected, rel=1e-5)
    monkeypatch.setattr(zs, "TokenEvaluator", None)  # a cached table is read, not recomputed
    assert np.array_equal(zs.position_losses(gpt_run, windows=16), losses)
    monkeypatch.undo()
    table = zs.loss_by_position({"transformer": [gpt_run], "lstm": [lstm_run]}, windows=16)
    assert list(table.columns) == zs.LOSS_BY_POSITION_COLUMNS and len(table) == 2 * n_ctx
    assert table.groupby("model")["position"].apply(list).map(lambda p: p == list(range(1, n_ctx + 1))).all()
    assert ((table["ci_low"] <= table["loss"]) & (table["loss"] <= table["ci_high"])).all() and (table["n"] == 16).all()
    gaps = zs.position_gaps({"transformer": gpt_run, "lstm": lstm_run}, windows=16)
    assert np.allclose(gaps["lstm_minus_transformer"], gaps["lstm"] - gaps["transformer"])
    with pytest.raises(ValueError, match="step=5 is not a kept checkpoint"):
        zs.position_losses(gpt_run, step=5)
    png, csv = plots.save_figure(plots.plot_loss_by_position(table), table, "loss_by_position", tmp_path)
    assert png.stat().st_size > 0 and pd.read_csv(csv).columns.tolist() == zs.LOSS_BY_POSITION_COLUMNS
    sentence = zs._by_position(gaps)
    assert sentence.startswith("Kaplan et al. (2020, Figure 7)") and all(p in sentence for p in gaps["positions"])
