import dataclasses

import pandas as pd
import pytest
import torch

from workbench.core.options import apply_overrides
from workbench.experiments import RECIPES, TransferExperiment, pretrain
from workbench.experiments import transfer as transfer_module
from workbench.experiments.transfer import (
    ABLATION_COLUMNS,
    SWEEP_COLUMNS,
    ablation,
    finetune_task,
    layer_transfer_sweep,
    summarize,
)
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
def run(tmp_path_factory):
    """One tiny pretraining run shared by the module, in a cache of its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield pretrain(TINY, progress=False)


@pytest.fixture
def count_runs(monkeypatch):
    """Count the fine-tuning runs actually trained (cache misses)."""
    calls = []
    real = transfer_module._finetune

    def counting(*args, **kwargs):
        calls.append(args[2:4])  # task, layers
        return real(*args, **kwargs)

    monkeypatch.setattr(transfer_module, "_finetune", counting)
    return calls


def test_finetune_task_reports_accuracies_and_settings(run):
    result = finetune_task(run, "sentiment", n_layers=1, n_labelled=6, settings=FAST)
    for split in ("train", "dev", "test"):
        assert 0.0 <= result[f"{split}_accuracy"] <= 1.0
    assert result["train_examples"] == 6 and result["dev_examples"] == 8
    assert result["layers_transferred"] == 1 and result["pretrained"] and result["lm_weight"] == 0.5
    assert result["settings"] == FAST.key() and result["steps"] == 2
    assert result["pretraining"] == TINY.key()
    fresh = finetune_task(None, "sentiment", n_labelled=6, settings=FAST, spec=TINY)
    assert not fresh["pretrained"] and fresh["layers_transferred"] is None


def test_sweep_rows_columns_and_cache(run, count_runs):
    sweep = layer_transfer_sweep(
        run, "sentiment", layers=[0, 2], seeds=(0, 1), n_labelled=8, settings=FAST, progress=False
    )
    assert list(sweep.columns) == SWEEP_COLUMNS
    assert len(sweep) == (2 + 1) * 2 * 3  # (layer counts + baseline) x seeds x splits
    curve = sweep[sweep["variant"] == "transfer"]
    assert sorted(curve["layers_transferred"].unique()) == [0, 2]
    baseline = sweep[sweep["variant"] == "no_pretraining"]
    assert len(baseline) == 2 * 3 and baseline["layers_transferred"].isna().all()
    assert set(sweep["split"]) == {"train", "dev", "test"} and sweep["accuracy"].between(0, 1).all()
    trained = len(count_runs)
    assert trained == 6

    again = layer_transfer_sweep(
        run, "sentiment", layers=[0, 2], seeds=(0, 1), n_labelled=8, settings=FAST, progress=False
    )
    assert len(count_runs) == trained  # every run read from the cache
    pd.testing.assert_frame_equal(again, sweep)

    # The ablation shares the sweep's runs with all layers and without pretraining.
    table = ablation(run, ["sentiment"], seeds=(0, 1), n_labelled=8, settings=FAST, progress=False)
    assert list(table.columns) == ABLATION_COLUMNS
    assert len(table) == 3 * 2 * 3
    assert list(dict.fromkeys(table["variant"])) == ["full", "no_aux_lm", "no_pretraining"]
    assert len(count_runs) == trained + 2  # no_aux_lm, one per seed
    summary = summarize(table, ["task", "variant", "split"])
    assert (summary["seeds"] == 2).all() and len(summary) == 9


def test_sweep_on_a_multiple_choice_task(run):
    sweep = layer_transfer_sweep(run, "next_line", layers=[2], seeds=(0,), n_labelled=8, settings=FAST, progress=False)
    assert len(sweep) == 2 * 3 and sweep["accuracy"].between(0, 1).all()


def test_parallel_runs_match_serial_ones(run, tmp_path, monkeypatch):
    """With ``threads`` set, a CPU sweep runs one process per core group; the numbers are those of
    the same run done alone."""
    settings = dataclasses.replace(FAST, threads=1)
    parallel = layer_transfer_sweep(
        run, "sentiment", layers=[1], seeds=(3,), n_labelled=8, settings=settings, progress=False
    )
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "serial"))
    alone = finetune_task(run, "sentiment", 1, seed=3, n_labelled=8, settings=settings)
    transfer = parallel[parallel["variant"] == "transfer"].set_index("split")["accuracy"]
    assert transfer.to_dict() == {split: alone[f"{split}_accuracy"] for split in ("train", "dev", "test")}


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
    assert recipe.pretraining.train.device == "cpu" and recipe.finetuning.train.device == "cpu"
    assert experiment.setup().loc["sentiment"].to_dict() == {
        "kind": "classification",
        "labelled": 64,
        "updates_per_run": 5,
    }
    # everything else is the recipe's
    cpu = RECIPES["cpu"]
    assert (
        apply_overrides(
            recipe,
            {
                "pretraining": {"train": {"steps": 1400, "device": "auto"}},
                "finetuning": {"epochs": 3.0, "train": {"steps": 100, "device": "auto"}},
                "labelled": cpu.labelled,
            },
        )
        == cpu
    )
    default = TransferExperiment.from_params("cpu")
    assert default.recipe.pretraining == cpu.pretraining and default.recipe.finetuning == cpu.finetuning
    assert default.layers == (0, 1, 2, 3, 4) and default.seeds == (0, 1, 2)
    assert default.n_labelled("sentiment") == cpu.labelled["sentiment"]
    with pytest.raises(ValueError, match=r"unknown recipe 'laptop': expected one of \['cpu', 'gpu', 'paper'\]"):
        TransferExperiment.from_params("laptop")
    with pytest.raises(ValueError, match=r"layers must be .* in 0\.\.4 \(the model has 4 layers\), got \(5,\)"):
        TransferExperiment.from_params("cpu", layers=[5])
    with pytest.raises(ValueError, match=r"n_labelled names tasks \['next_line'\] that are not run"):
        TransferExperiment.from_params("cpu", tasks=["sentiment"], n_labelled={"next_line": 10})
    with pytest.raises(ValueError, match=r"TransferExperiment.tasks must be .* one of \[.*\], got \('rte',\)"):
        TransferExperiment.from_params("cpu", tasks=["rte"])
    with pytest.raises(ValueError, match=r"TransferExperiment.seeds must be a non-empty list .*, got \(\)"):
        TransferExperiment.from_params("cpu", seeds=[])
    with pytest.raises(ValueError, match="TrainConfig.steps must be a positive integer, got 0"):
        TransferExperiment.from_params("cpu", finetune_steps=0)
    with pytest.raises(ValueError, match=r"Recipe.labelled must be a mapping from tasks .*, got \{'sentiment': 0"):
        TransferExperiment.from_params("cpu", n_labelled=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested but CUDA is not available"):
            TransferExperiment.from_params("cpu", device="cuda")


def test_plots_draw_the_experiment_frames(run, tmp_path):
    sweep = layer_transfer_sweep(
        run, "sentiment", layers=[0, 2], seeds=(0, 1), n_labelled=8, settings=FAST, progress=False
    )
    table = ablation(run, ["sentiment"], seeds=(0, 1), n_labelled=8, settings=FAST, progress=False)
    loss = plots.pretraining_loss_data(run.history)
    assert set(loss["split"]) == {"train", "val"} and list(loss.columns) == ["step", "tokens", "split", "loss"]
    for name, fig, data in [
        ("loss", plots.plot_pretraining_loss(loss), loss),
        ("transfer", plots.plot_layer_transfer(sweep), sweep),
        ("ablation", plots.plot_ablation(table), table),
    ]:
        png, csv = plots.save_figure(fig, data, name, tmp_path)
        assert png.stat().st_size > 0 and len(pd.read_csv(csv)) == len(data)


def test_findings_name_only_differences_beyond_two_standard_errors():
    def rows(variant, layers, accuracies, task="sentiment"):
        return [
            dict(task=task, variant=variant, layers_transferred=layers, seed=seed, split="dev", accuracy=a)
            for seed, a in enumerate(accuracies)
        ]

    sweep = pd.DataFrame(
        rows("no_pretraining", pd.NA, [0.50, 0.51, 0.49])
        + rows("transfer", 0, [0.60, 0.61, 0.59])
        + rows("transfer", 2, [0.58, 0.66, 0.62]),
        columns=SWEEP_COLUMNS,
    )
    ablation_table = pd.DataFrame(
        [
            dict(r, variant=v)
            for v, accs in [
                ("full", [0.60, 0.61, 0.59]),
                ("no_aux_lm", [0.60, 0.62, 0.58]),
                ("no_pretraining", [0.50, 0.51, 0.49]),
            ]
            for r in rows(v, None, accs)
        ],
        columns=SWEEP_COLUMNS,
    ).drop(columns="layers_transferred")
    lines = transfer_module.findings(sweep, ablation_table)
    assert lines[0].startswith(
        "sentiment (dev, chance 0.50, 3 seeds): no pretraining 0.500; by layers transferred 0: 0.600, 2: 0.620."
    )
    # 2 layers: mean 0.62 against 0.60 with a seed spread of 0.04: within noise; both far above 0.50.
    assert lines[1] == (
        "  - all 2 layers are above no pretraining, and level with 0 layers; 0 layers are above no pretraining."
    )
    assert lines[2] == (
        "ablation, sentiment: full 0.600 is level with no auxiliary LM (0.600) and above no pretraining (0.500)."
    )
