import dataclasses
import functools
import sys

import pandas as pd
import pytest
import torch

from workbench.core.options import apply_overrides
from workbench.data.tasks import load_task
from workbench.experiments import RECIPES, TransferExperiment, pretrain, transfer_statistics
from workbench.experiments import transfer as transfer_module
from workbench.experiments.transfer import (
    ABLATION_COLUMNS,
    PROBE_COLUMNS,
    SWEEP_COLUMNS,
    ablation,
    finetune_task,
    layer_lens,
    layer_probes,
    layer_transfer_sweep,
)
from workbench.training.sinks import MissingExtra
from workbench.ui import plots

pytestmark = [pytest.mark.data, pytest.mark.train]

TINY = apply_overrides(
    RECIPES["cpu"].pretraining,
    {
        "preset": "gpt1-micro",
        "n_checkpoints": 2,
        "train": {
            "steps": 4,
            "batch_size": 4,
            "eval_every": 2,
            "eval_sequences": 4,
            "device": "cpu",
            "precision": "fp32",
            "progress": False,
        },
    },
)
# a fixed number of updates per run, in this process (threads=None: no worker processes)
FAST = apply_overrides(
    RECIPES["cpu"].finetuning,
    {
        "epochs": None,
        "max_eval_examples": 8,
        "threads": None,
        "train": {"steps": 2, "batch_size": 4, "device": "cpu", "precision": "fp32"},
    },
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache of the module's own, for its tiny pretraining runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def run(cache):
    return pretrain(TINY, progress=False)


@pytest.fixture(scope="module")
def lstm_run(cache):
    return pretrain(dataclasses.replace(TINY, model="lstm"), progress=False)


@pytest.fixture
def count_runs(monkeypatch):
    """Count the fine-tuning runs actually trained (cache misses)."""
    calls = []
    real = transfer_module._finetune

    def counting(job, sink=None):
        calls.append((job.task, job.n_layers, job.checkpoint_step))
        return real(job, sink)

    monkeypatch.setattr(transfer_module, "_finetune", counting)
    return calls


def test_finetune_task_reports_accuracies_and_settings(run):
    result = finetune_task(run, "sentiment", n_layers=1, n_labelled=6, settings=FAST)
    for split in ("dev", "test"):
        assert 0.0 <= result[f"{split}_accuracy"] <= 1.0
        correct = result[f"{split}_correct"]
        assert len(correct) == result[f"{split}_examples"] == 8 and set(correct) <= {"0", "1"}
        assert result[f"{split}_accuracy"] == correct.count("1") / 8
    assert result["n_labelled"] == 6 and result["checkpoint_step"] == run.steps[-1]
    assert result["layers_transferred"] == 1 and result["pretrained"] and result["lm_weight"] == 0.5
    assert result["settings"] == FAST.key() and result["steps"] == 2
    assert result["pretraining"] == TINY.key()
    fresh = finetune_task(None, "sentiment", n_labelled=6, settings=FAST, spec=TINY)
    assert not fresh["pretrained"] and fresh["layers_transferred"] is None


def test_sweep_rows_columns_and_cache(run, lstm_run, count_runs):
    first, last = run.steps[0], run.steps[-1]
    sweep = layer_transfer_sweep(
        run,
        "sentiment",
        layers=[0, 2],
        seeds=(0, 1),
        n_labelled=8,
        settings=FAST,
        checkpoints=[first, last],
        progress=False,
    )
    assert list(sweep.columns) == [*SWEEP_COLUMNS, "first_task_loss", "final_task_loss", "correct"]
    assert len(sweep) == (2 * 2 + 1) * 2 * 2  # (layer counts x checkpoints + baseline) x seeds x splits
    curve = sweep[sweep["variant"] == "transfer"]
    assert sorted(curve["layers_transferred"].unique()) == [0, 2]
    assert sorted(curve["checkpoint_step"].unique()) == [first, last]
    assert set(curve["tokens"]) == {TINY.tokens_seen(first), TINY.tokens_seen(last)}
    baseline = sweep[sweep["variant"] == "no_pretraining"]
    assert len(baseline) == 2 * 2 and baseline["layers_transferred"].isna().all()
    assert baseline["checkpoint_step"].isna().all() and (baseline["tokens"] == 0).all()
    assert set(sweep["split"]) == {"dev", "test"} and sweep["accuracy"].between(0, 1).all()
    assert (sweep["n"] == sweep["correct"].str.len()).all()
    trained = len(count_runs)
    assert trained == 10

    again = layer_transfer_sweep(
        run,
        "sentiment",
        layers=[0, 2],
        seeds=(0, 1),
        n_labelled=8,
        settings=FAST,
        checkpoints=[first, last],
        progress=False,
    )
    assert len(count_runs) == trained  # every run read from the cache
    pd.testing.assert_frame_equal(again, sweep)

    # The ablation shares the sweep's runs with all layers at the last checkpoint and without pretraining.
    table = ablation(run, ["sentiment"], seeds=(0, 1), n_labelled=8, settings=FAST, lstm_run=lstm_run, progress=False)
    assert list(table.columns) == [*ABLATION_COLUMNS, "first_task_loss", "final_task_loss", "correct"]
    assert len(table) == 4 * 2 * 2
    assert list(dict.fromkeys(table["variant"])) == ["full", "no_aux_lm", "no_pretraining", "lstm"]
    expected = [("sentiment", 2, last)] * 2 + [("sentiment", None, lstm_run.steps[-1])] * 2  # no_aux_lm, lstm
    assert sorted(count_runs[trained:], key=str) == sorted(expected, key=str)
    summary = transfer_statistics.seed_summary(table, ["task", "variant", "split"])
    assert (summary["seeds"] == 2).all() and len(summary) == 8 and (summary["band"] > 0).all()
    with pytest.raises(ValueError, match="lstm_run must be an LSTM run pretrained with the transformer's"):
        ablation(run, ["sentiment"], settings=FAST, lstm_run=run, progress=False)


def test_head_and_fresh_layers_depend_on_the_seed_alone(run, monkeypatch):
    """Paired by seed: the task head starts the same for every layer count and checkpoint, and
    differs between seeds (loading a checkpoint reseeds the global generator, so it must come first)."""
    from workbench.experiments import recipes

    heads = {}
    real = recipes.TaskModel

    def recording(body, *args, **kwargs):
        model = real(body, *args, **kwargs)
        heads[len(heads)] = model.head.weight.detach().clone()
        return model

    monkeypatch.setattr(recipes, "TaskModel", recording)  # FinetuneSettings.task_model builds every run's model
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(run.run_dir.parent / "head-check"))
    settings = apply_overrides(FAST, {"train": {"steps": 1}})
    finetune_task(run, "sentiment", 0, seed=5, n_labelled=8, settings=settings, checkpoint_step=run.steps[0])
    finetune_task(run, "sentiment", 2, seed=5, n_labelled=8, settings=settings)
    finetune_task(None, "sentiment", None, seed=5, n_labelled=8, settings=settings, spec=TINY)
    finetune_task(run, "sentiment", 2, seed=6, n_labelled=8, settings=settings)
    assert torch.equal(heads[0], heads[1]) and torch.equal(heads[0], heads[2])
    assert not torch.equal(heads[0], heads[3])


def test_probes_per_layer_on_pretrained_and_untrained_features(run):
    pretrained = layer_probes(run, "sentiment", run.steps[-1], FAST)
    untrained = layer_probes(run, "sentiment", 0, FAST)
    assert list(pretrained.columns) == [*PROBE_COLUMNS, "correct"]
    assert sorted(pretrained["layer"].unique()) == [0, 1, 2] and set(pretrained["split"]) == {"dev", "test"}
    assert set(pretrained["features"]) == {"pretrained"} and set(untrained["features"]) == {"untrained"}
    assert (untrained["tokens"] == 0).all() and (pretrained["checkpoint_step"] == run.steps[-1]).all()
    assert (pretrained["n"] == pretrained["correct"].str.len()).all()
    with pytest.raises(
        ValueError, match=r"step=2 is neither 0 \(untrained\) nor a kept checkpoint; kept steps: \[1, 4\]"
    ):
        layer_probes(run, "sentiment", 2, FAST)
    with pytest.raises(ValueError, match="task 'next_line' is a multiple_choice task; probes need one of"):
        layer_probes(run, "next_line", 0, FAST)


def test_sweep_on_a_multiple_choice_task(run):
    sweep = layer_transfer_sweep(run, "next_line", layers=[2], seeds=(0,), n_labelled=8, settings=FAST, progress=False)
    assert len(sweep) == 2 * 2 and sweep["accuracy"].between(0, 1).all()


def test_parallel_runs_match_serial_ones(run, tmp_path, monkeypatch):
    """With ``threads`` set, a CPU sweep runs one process per core group; the numbers are those of
    the same run done alone. Each worker logs its run to TensorBoard when asked."""
    settings = dataclasses.replace(FAST, threads=1)
    parallel = layer_transfer_sweep(
        run,
        "sentiment",
        layers=[1],
        seeds=(3,),
        n_labelled=8,
        settings=settings,
        progress=False,
        tensorboard=tmp_path / "tensorboard",
    )
    logged = {path.parent.name.split("_seed-")[0] for path in (tmp_path / "tensorboard").rglob("events.*")}
    assert logged == {
        f"gpt-step-{run.steps[-1]}_layers-1_lambda-0.5_linear-head",
        "no-pretraining_lambda-0.5_linear-head",
    }
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "serial"))
    alone = finetune_task(run, "sentiment", 1, seed=3, n_labelled=8, settings=settings)
    transfer = parallel[parallel["variant"] == "transfer"].set_index("split")["accuracy"]
    assert transfer.to_dict() == {split: alone[f"{split}_accuracy"] for split in ("dev", "test")}


def test_a_run_keeps_its_learning_curve(run):
    settings = apply_overrides(FAST, {"train": {"steps": 25}})
    result = finetune_task(run, "sentiment", 2, n_labelled=8, settings=settings)
    curve = result["curve"]
    assert curve["step"] == [10, 20, 25] and len(curve["loss"]) == len(curve["task_loss"]) == 3
    assert result["final_task_loss"] == curve["task_loss"][-1]


def test_the_lens_reads_every_layer_of_every_kept_checkpoint(run, monkeypatch):
    # the tiny model's 64 tokens of GPT-1's BPE hold short lines only: the first 30 of up to 10 words
    short = [e for e in load_task("corrupted_pair", "test") if len(e["choices"][0].split()) <= 10][:30]
    monkeypatch.setattr(transfer_module, "load_task", lambda task, split, seed: short)
    table = layer_lens(run, "corrupted_pair", run.steps[-1])
    assert list(table["layer"]) == [0, 1, 2] and (table["n"] == 30).all()
    assert ((table["ci_low"] <= table["accuracy"]) & (table["accuracy"] <= table["ci_high"])).all()
    assert (table["n"] == table["correct"].str.len()).all()
    assert table.equals(layer_lens(run, "corrupted_pair", run.steps[-1]))  # read back from the cache
    with pytest.raises(ValueError, match="task 'corrupted_sentence' is not a two-choice task"):
        layer_lens(run, "corrupted_sentence", run.steps[-1])
    with pytest.raises(ValueError, match=r"step=7 is neither 0 \(untrained\) nor a kept checkpoint"):
        layer_lens(run, "corrupted_pair", 7)


def test_transferred_layers_change_the_result(run):
    settings = apply_overrides(FAST, {"train": {"steps": 1}})
    zero = finetune_task(run, "sentiment", 0, n_labelled=8, settings=settings)
    full = finetune_task(run, "sentiment", 2, n_labelled=8, settings=settings)
    assert zero["final_task_loss"] != full["final_task_loss"]


def test_bad_input_is_named(run):
    layers = r"layers must be a non-empty list of items each an integer in 0\.\.2 \(the model has 2 layers\)"
    with pytest.raises(ValueError, match=layers + r", got \(0, 3\)"):
        layer_transfer_sweep(run, "sentiment", layers=[0, 3], settings=FAST, progress=False)
    with pytest.raises(ValueError, match=layers + r", got \(-1,\)"):
        finetune_task(run, "sentiment", n_layers=-1, settings=FAST)
    with pytest.raises(ValueError, match=r"task must be one of \['sentiment', 'next_line'.*\], got 'sentiments'"):
        finetune_task(run, "sentiments", settings=FAST)
    with pytest.raises(ValueError, match=r"task must be one of \[.*\], got 'nli'"):
        ablation(run, ["sentiment", "nli"], settings=FAST, progress=False)
    with pytest.raises(ValueError, match="nothing is transferred; n_layers must be None, got 1"):
        finetune_task(None, "sentiment", n_layers=1, settings=FAST)
    with pytest.raises(ValueError, match=r"checkpoint_step=2 is not a kept checkpoint; kept steps: \[1, 4\]"):
        finetune_task(run, "sentiment", checkpoint_step=2, settings=FAST)
    with pytest.raises(ValueError, match="checkpoint_step must be None, got 4"):
        finetune_task(None, "sentiment", checkpoint_step=4, settings=FAST)
    with pytest.raises(ValueError, match=r"seeds must be a non-empty list of items each an integer >= 0, got \(\)"):
        layer_transfer_sweep(run, "sentiment", seeds=[], settings=FAST, progress=False)
    with pytest.raises(ValueError, match="n_labelled of task 'sentiment' must be None or a positive integer, got 0"):
        finetune_task(run, "sentiment", n_labelled=0, settings=FAST)
    with pytest.raises(ValueError, match=r"lm_weight \(lambda\) must be a number >= 0, got -1"):
        finetune_task(run, "sentiment", lm_weight=-1, settings=FAST)
    # the settings are checked by their dataclasses, which name the class and field
    with pytest.raises(ValueError, match="TrainConfig.lr must be a positive number, got 0"):
        apply_overrides(FAST, {"train": {"lr": 0}})
    with pytest.raises(ValueError, match="FinetuneSettings.epochs must be None or a positive number, got 0"):
        apply_overrides(FAST, {"epochs": 0})
    with pytest.raises(ValueError, match=r"FinetuneSettings.head_dropout must be a number in \[0, 1\), got 1.5"):
        dataclasses.replace(FAST, head_dropout=1.5)
    with pytest.raises(ValueError, match=r"FinetuneSettings has no option\(s\) \['lr'\]; valid: \["):
        apply_overrides(FAST, {"lr": 1e-3})


def test_experiment_parameters_are_validated_before_any_work():
    experiment = TransferExperiment.from_params(
        "cpu",
        tasks=["sentiment"],
        control_tasks=[],
        seeds=[2, 0],
        layers=[0, 4],
        n_labelled=64,
        pretrain_steps=300,
        finetune_steps=5,
        device="cpu",
    )
    assert experiment.seeds == (2, 0) and experiment.layers == (0, 4) and experiment.tasks == ("sentiment",)
    assert experiment.n_labelled("sentiment") == 64
    recipe = experiment.recipe
    assert recipe.finetuning.epochs is None and recipe.finetuning.train.steps == 5
    assert recipe.pretraining.train.steps == 300
    assert experiment.checkpoints == (1, 300)  # the first and last kept steps of the shorter run
    assert recipe.pretraining.train.device == "cpu" and recipe.finetuning.train.device == "cpu"
    setup = experiment.setup().loc["sentiment"].to_dict()
    assert {k: setup[k] for k in ("kind", "labelled", "updates_per_run")} == {
        "kind": "classification",
        "labelled": 64,
        "updates_per_run": 5,
    }
    assert setup["dev_band"] == round(1.96 * (0.25 / setup["dev_examples"]) ** 0.5, 3)
    # everything else is the recipe's
    cpu = RECIPES["cpu"]
    assert (
        apply_overrides(
            recipe,
            {
                "pretraining": {"train": {"steps": 700, "device": "auto"}},
                "finetuning": {"epochs": 1.0, "train": {"steps": 100, "device": "auto"}},
                "labelled": cpu.labelled,
                "transfer_checkpoints": cpu.transfer_checkpoints,
            },
        )
        == cpu
    )
    default = TransferExperiment.from_params("cpu")
    assert default.recipe.pretraining == cpu.pretraining and default.recipe.finetuning == cpu.finetuning
    assert default.layers == (0, 1, 2, 3, 4) and default.seeds == (0, 1, 2, 3, 4)
    assert default.tasks == ("corrupted_pair",) and default.control_tasks == ("corrupted_sentence", "sentiment")
    assert default.checkpoints == (700,) and default.probed_tasks == ("corrupted_sentence", "sentiment")
    assert default.lens_tasks == ("corrupted_pair",)
    assert default.in_domain_tasks == ("corrupted_pair", "corrupted_sentence")
    both = TransferExperiment.from_params("cpu", tasks=["corrupted_sentence", "line_order"])
    assert both.n_labelled("line_order") == cpu.labelled["line_order"]
    assert TransferExperiment.from_params("cpu", checkpoints=[17]).checkpoints == (17, 700)
    with pytest.raises(ValueError, match=r"task 'corrupted_pair' is a multiple_choice task; probes need one of"):
        TransferExperiment.from_params("cpu", control_tasks=["corrupted_pair"])
    with pytest.raises(ValueError, match=r"unknown recipe 'laptop': expected one of \['cpu', 'gpu', 'paper'\]"):
        TransferExperiment.from_params("laptop")
    with pytest.raises(ValueError, match=r"layers must be .* in 0\.\.4 \(the model has 4 layers\), got \(5,\)"):
        TransferExperiment.from_params("cpu", layers=[5])
    with pytest.raises(ValueError, match=r"n_labelled names tasks \['next_line'\] that are not run"):
        TransferExperiment.from_params("cpu", tasks=["sentiment"], n_labelled={"next_line": 10})
    with pytest.raises(ValueError, match=r"TransferExperiment.tasks must be .* one of \[.*\], got \('rte',\)"):
        TransferExperiment.from_params("cpu", tasks=["rte"])
    # a multiple-choice task is fine-tuned, not probed (a probe reads one [extract] state per example)
    four_choices = TransferExperiment.from_params("cpu", tasks=["next_line"])
    assert four_choices.probed_tasks == ("corrupted_sentence", "sentiment") and four_choices.lens_tasks == ()
    with pytest.raises(ValueError, match=r"TransferExperiment.seeds must be a non-empty list .*, got \(\)"):
        TransferExperiment.from_params("cpu", seeds=[])
    with pytest.raises(ValueError, match="TrainConfig.steps must be a positive integer, got 0"):
        TransferExperiment.from_params("cpu", finetune_steps=0)
    with pytest.raises(ValueError, match=r"Recipe.labelled must be a mapping from tasks .*, got \{'corrupted_pair': 0"):
        TransferExperiment.from_params("cpu", n_labelled=0)
    with pytest.raises(ValueError, match=r"Recipe.transfer_checkpoints \[5\]: steps \[5\] are not kept checkpoints"):
        TransferExperiment.from_params("cpu", checkpoints=[5])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested but CUDA is not available"):
            TransferExperiment.from_params("cpu", device="cuda")


def test_plots_draw_the_experiment_frames(run, lstm_run, tmp_path):
    sweep = layer_transfer_sweep(
        run,
        "sentiment",
        layers=[0, 2],
        seeds=(0, 1),
        n_labelled=8,
        settings=FAST,
        checkpoints=run.steps,
        progress=False,
    )
    table = ablation(run, ["sentiment"], seeds=(0, 1), n_labelled=8, settings=FAST, lstm_run=lstm_run, progress=False)
    probes = pd.concat([layer_probes(run, "sentiment", step, FAST) for step in (0, *run.steps)])
    loss = plots.pretraining_loss_data(run.history)
    assert set(loss["split"]) == {"train", "val"} and list(loss.columns) == ["step", "tokens", "split", "loss"]
    by = ["task", "variant", "checkpoint_step", "tokens", "layers_transferred"]
    summary = transfer_statistics.seed_summary(sweep[sweep["split"] == "dev"], by)
    gains = transfer_statistics.transfer_gains(sweep)
    assert len(gains) == 2 and set(gains["tokens"]) == {TINY.tokens_seen(s) for s in run.steps}
    ablation_summary = transfer_statistics.seed_summary(table[table["split"] == "dev"], ["task", "variant"])
    probe_summary = transfer_statistics.probe_table(probes)
    assert len(probe_summary) == 3 * 3  # layers x (untrained + 2 checkpoints)
    for name, fig, data in [
        ("loss", plots.plot_pretraining_loss(loss), loss),
        ("transfer", plots.plot_layer_transfer(summary, gains), sweep[SWEEP_COLUMNS]),
        ("probes", plots.plot_layer_probes(probe_summary), probes[PROBE_COLUMNS]),
        ("ablation", plots.plot_ablation(ablation_summary), table[ABLATION_COLUMNS]),
    ]:
        png, csv = plots.save_figure(fig, data, name, tmp_path)
        assert png.stat().st_size > 0 and len(pd.read_csv(csv)) == len(data)


def test_the_gpu_recipe_runs_end_to_end_at_a_tiny_size(cache):
    """The GPU recipe's design (gpt2-mini, every label, three epochs, the sweep from several
    checkpoints, Table 5 with the LSTM) runs on the CPU when cut to a few updates and examples."""
    recipe = apply_overrides(RECIPES["gpu"], {"finetuning": {"max_eval_examples": 4}})
    experiment = TransferExperiment.from_params(
        recipe,
        tasks=["corrupted_sentence"],
        control_tasks=[],
        seeds=[0],
        layers=[0, 4],
        n_labelled=8,
        pretrain_steps=3,
        finetune_steps=1,
        device="cpu",
    )
    assert experiment.recipe.pretraining.preset == "gpt2-mini" and experiment.checkpoints == (1, 3)
    run, lstm_run = experiment.pretraining(progress=False), experiment.lstm_pretraining(progress=False)
    sweep = experiment.sweep(run, progress=False)
    assert len(sweep) == (2 * 2 + 1) * 2 and (sweep["n"] == 4).all()
    table = experiment.ablation(run, lstm_run, progress=False)
    assert list(dict.fromkeys(table["variant"])) == ["full", "no_aux_lm", "no_pretraining", "lstm"]
    assert "Table 5, corrupted_sentence" in experiment.findings(sweep, table, splits=["dev"])


def test_the_predicted_class_share_is_read_back_from_the_outcomes():
    """A two-class run's answers follow from its per-example outcomes and the labels, in split order."""
    from workbench.data.tasks import load_task

    labels = [example["label"] for example in load_task("corrupted_sentence", "dev")]
    always_original = "".join("1" if label == 1 else "0" for label in labels)
    share = transfer_module.predicted_share
    assert share("corrupted_sentence", "dev", 0, always_original) == 1.0
    originals = sum(labels) / len(labels)
    assert share("corrupted_sentence", "dev", 0, "1" * len(labels)) == pytest.approx(max(originals, 1 - originals))
    alternating = "".join("1" if (label == 1) == (i % 2 == 0) else "0" for i, label in enumerate(labels))
    assert share("corrupted_sentence", "dev", 0, alternating) == pytest.approx(0.5, abs=1 / len(labels))
    assert share("next_line", "dev", 0, "1010") != share("next_line", "dev", 0, "1010")  # NaN: four choices


def test_the_likelihood_head_runs_the_sweep_and_table_5_keeps_gpt1s_head(cache):
    """With ``head="likelihood"`` and its own learning rate, every run of the sweep scores choices by
    their log-likelihood, and Table 5 gains GPT-1's linear head as a row, at the recipe's settings."""
    recipe = apply_overrides(RECIPES["cpu"], {"pretraining": TINY, "finetuning": FAST})
    experiment = TransferExperiment.from_params(
        recipe,
        tasks=["corrupted_pair"],
        control_tasks=[],
        seeds=[0],
        layers=[0, 2],
        n_labelled=8,
        head="likelihood",
        finetune_lr=3e-4,
    )
    assert experiment.recipe.finetuning.head == "likelihood" and experiment.recipe.finetuning.train.lr == 3e-4
    assert experiment.linear_head.head == "linear" and experiment.linear_head.train.lr == FAST.train.lr
    run, lstm_run = experiment.pretraining(progress=False), experiment.lstm_pretraining(progress=False)
    sweep = experiment.sweep(run, progress=False)
    assert set(sweep["variant"]) == {"transfer", "no_pretraining"} and (sweep["n"] == 8).all()
    table = experiment.ablation(run, lstm_run, progress=False)
    assert list(dict.fromkeys(table["variant"])) == ["full", "no_aux_lm", "no_pretraining", "lstm", "linear_head"]
    linear = transfer_module._job(run, "corrupted_pair", None, 0, 8, 0.5, experiment.linear_head, None)
    assert transfer_module._cached(linear)["settings"]["train"]["lr"] == FAST.train.lr
    assert "linear_head: full minus linear_head" in experiment.findings(sweep, table, splits=["dev"])


def _tensorboard_scalars(log_dir, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def test_each_run_of_a_sweep_logs_to_tensorboard_in_its_own_directory(run, tmp_path, count_runs):
    """A run trained with a ``tensorboard`` directory writes its learning curve to a subdirectory
    named after it; the directory is no part of the cache key: without it, the same runs are read."""
    sweep = functools.partial(
        layer_transfer_sweep, run, "sentiment", layers=[1], seeds=(7,), n_labelled=8, settings=FAST, progress=False
    )
    logged = sweep(tensorboard=tmp_path / "tensorboard")
    assert len(count_runs) == 2  # one layer count and the run without pretraining
    transferred = transfer_module._job(run, "sentiment", 1, 7, 8, 0.5, FAST, None)
    fresh = transfer_module._job(None, "sentiment", None, 7, 8, 0.5, FAST, TINY)
    names = {
        f"gpt-step-{run.steps[-1]}_layers-1_lambda-0.5_linear-head_seed-7_{transferred.entry().name}",
        f"no-pretraining_lambda-0.5_linear-head_seed-7_{fresh.entry().name}",
    }
    assert {path.name for path in (tmp_path / "tensorboard" / "sentiment").iterdir()} == names
    for job in (transferred, fresh):
        curve = transfer_module._cached(job)["curve"]
        scalars = _tensorboard_scalars(tmp_path / "tensorboard" / job.run_name, "loss")
        assert [step for step, _ in scalars] == curve["step"]
        assert [value for _, value in scalars] == pytest.approx(curve["loss"], rel=1e-6)

    event_files = sorted((tmp_path / "tensorboard").rglob("events.*"))
    pd.testing.assert_frame_equal(sweep(), logged)
    pd.testing.assert_frame_equal(sweep(tensorboard=tmp_path / "tensorboard"), logged)
    assert len(count_runs) == 2  # read from the cache: nothing trained, nothing logged again
    assert sorted((tmp_path / "tensorboard").rglob("events.*")) == event_files


def test_a_sweep_asking_for_tensorboard_without_it_fails_before_any_run(run, tmp_path, monkeypatch, count_runs):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what a missing tensorboard raises
    with pytest.raises(MissingExtra, match=r"gpt-workbench\[tensorboard\]"):
        layer_transfer_sweep(
            run, "sentiment", layers=[1], seeds=(8,), settings=FAST, progress=False, tensorboard=tmp_path
        )
    assert count_runs == [] and not list(tmp_path.iterdir())
