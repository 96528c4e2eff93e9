import dataclasses

import pandas as pd
import pytest
import torch

from workbench.ui import plots
from workbench.experiments import PretrainSpec, pretrain
from workbench.experiments import transfer as transfer_module
from workbench.experiments.transfer import (
    ABLATION_COLUMNS,
    SWEEP_COLUMNS,
    FinetuneSettings,
    ablation,
    finetune_task,
    layer_transfer_sweep,
    pretrain_spec,
    summarize,
    transfer_experiment,
)

TINY = PretrainSpec(preset="gpt1-micro", steps=4, batch_size=4, n_checkpoints=2, device="cpu", precision="fp32",
                    extra={"eval_sequences": 4})
FAST = FinetuneSettings(steps=2, batch_size=4, max_eval_examples=8, device="cpu", precision="fp32")


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
    assert result["settings"] == FAST.to_dict() and result["steps"] == 2
    fresh = finetune_task(None, "sentiment", n_labelled=6, settings=FAST, spec=TINY)
    assert not fresh["pretrained"] and fresh["layers_transferred"] is None


def test_sweep_rows_columns_and_cache(run, count_runs):
    sweep = layer_transfer_sweep(run, "sentiment", layers=[0, 2], seeds=(0, 1), n_labelled=8,
                                 settings=FAST, progress=False)
    assert list(sweep.columns) == SWEEP_COLUMNS
    assert len(sweep) == (2 + 1) * 2 * 3  # (layer counts + baseline) x seeds x splits
    curve = sweep[sweep["variant"] == "transfer"]
    assert sorted(curve["layers_transferred"].unique()) == [0, 2]
    baseline = sweep[sweep["variant"] == "no_pretraining"]
    assert len(baseline) == 2 * 3 and baseline["layers_transferred"].isna().all()
    assert set(sweep["split"]) == {"train", "dev", "test"} and sweep["accuracy"].between(0, 1).all()
    trained = len(count_runs)
    assert trained == 6

    again = layer_transfer_sweep(run, "sentiment", layers=[0, 2], seeds=(0, 1), n_labelled=8,
                                 settings=FAST, progress=False)
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
    sweep = layer_transfer_sweep(run, "next_line", layers=[2], seeds=(0,), n_labelled=8,
                                 settings=FAST, progress=False)
    assert len(sweep) == 2 * 3 and sweep["accuracy"].between(0, 1).all()


def test_parallel_runs_match_serial_ones(run, tmp_path, monkeypatch):
    """With ``threads`` set, a CPU sweep runs one process per core group; the numbers are those of
    the same run done alone."""
    settings = dataclasses.replace(FAST, threads=1)
    parallel = layer_transfer_sweep(run, "sentiment", layers=[1], seeds=(3,), n_labelled=8,
                                    settings=settings, progress=False)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "serial"))
    alone = finetune_task(run, "sentiment", 1, seed=3, n_labelled=8, settings=settings)
    transfer = parallel[parallel["variant"] == "transfer"].set_index("split")["accuracy"]
    assert transfer.to_dict() == {split: alone[f"{split}_accuracy"] for split in ("train", "dev", "test")}


def test_transferred_layers_change_the_result(run):
    settings = dataclasses.replace(FAST, steps=1)
    zero = finetune_task(run, "sentiment", 0, n_labelled=8, settings=settings)
    full = finetune_task(run, "sentiment", 2, n_labelled=8, settings=settings)
    assert zero["final_task_loss"] != full["final_task_loss"]


def test_bad_input_is_named(run):
    with pytest.raises(ValueError, match=r"layers must be integers in 0\.\.2 .* got \[0, 3\]"):
        layer_transfer_sweep(run, "sentiment", layers=[0, 3], settings=FAST, progress=False)
    with pytest.raises(ValueError, match=r"layers must be integers in 0\.\.2 .* got \[-1\]"):
        finetune_task(run, "sentiment", n_layers=-1, settings=FAST)
    with pytest.raises(ValueError, match=r"unknown task 'sentiments'; valid tasks: \['sentiment', 'next_line'"):
        finetune_task(run, "sentiments", settings=FAST)
    with pytest.raises(ValueError, match=r"unknown task 'nli'; valid tasks"):
        ablation(run, ["sentiment", "nli"], settings=FAST, progress=False)
    with pytest.raises(ValueError, match="nothing is transferred; n_layers must be None, got 1"):
        finetune_task(None, "sentiment", n_layers=1, settings=FAST)
    with pytest.raises(ValueError, match=r"seeds must be a non-empty list of integers >= 0, got \[\]"):
        layer_transfer_sweep(run, "sentiment", seeds=[], settings=FAST, progress=False)
    with pytest.raises(ValueError, match="n_labelled for task 'sentiment' must be a positive integer or None, got 0"):
        finetune_task(run, "sentiment", n_labelled=0, settings=FAST)
    with pytest.raises(ValueError, match="FinetuneSettings.lr must be a positive number, got 0"):
        FinetuneSettings(lr=0)


def test_experiment_parameters_are_validated_before_any_work():
    experiment = transfer_experiment("cpu", tasks=["sentiment"], seeds=[2, 0], layers=[0, 4],
                                     n_labelled=64, finetune_steps=5, device="cpu")
    assert experiment.seeds == (2, 0) and experiment.layers == (0, 4)
    assert experiment.n_labelled == {"sentiment": 64} and experiment.settings.steps == 5
    assert experiment.spec.device == "cpu" and experiment.settings.device == "cpu"
    with pytest.raises(ValueError, match=r"unknown scale 'laptop'; valid scales: \['cpu', 'gpu', 'paper'\]"):
        transfer_experiment("laptop")
    with pytest.raises(ValueError, match=r"unknown scale 'tpu'"):
        pretrain_spec("tpu")
    with pytest.raises(ValueError, match=r"layers must be integers in 0\.\.4 .* got \[5\]"):
        transfer_experiment("cpu", layers=[5])
    with pytest.raises(ValueError, match=r"n_labelled names tasks \['next_line'\] that are not run"):
        transfer_experiment("cpu", tasks=["sentiment"], n_labelled={"next_line": 10})
    with pytest.raises(ValueError, match="unknown task 'rte'; valid tasks"):
        transfer_experiment("cpu", tasks=["rte"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested but CUDA is not available"):
            transfer_experiment("cpu", device="cuda")


def test_plots_draw_the_experiment_frames(run, tmp_path):
    sweep = layer_transfer_sweep(run, "sentiment", layers=[0, 2], seeds=(0, 1), n_labelled=8,
                                 settings=FAST, progress=False)
    table = ablation(run, ["sentiment"], seeds=(0, 1), n_labelled=8, settings=FAST, progress=False)
    loss = plots.pretraining_loss_data(run.history)
    assert set(loss["split"]) == {"train", "val"} and list(loss.columns) == ["step", "tokens", "split", "loss"]
    for name, fig, data in [("loss", plots.plot_pretraining_loss(loss), loss),
                            ("transfer", plots.plot_layer_transfer(sweep), sweep),
                            ("ablation", plots.plot_ablation(table), table)]:
        png, csv = plots.save_figure(fig, data, name, tmp_path)
        assert png.stat().st_size > 0 and len(pd.read_csv(csv)) == len(data)


def test_findings_name_only_differences_beyond_two_standard_errors():
    def rows(variant, layers, accuracies, task="sentiment"):
        return [dict(task=task, variant=variant, layers_transferred=layers, seed=seed, split="dev", accuracy=a)
                for seed, a in enumerate(accuracies)]

    sweep = pd.DataFrame(rows("no_pretraining", pd.NA, [0.50, 0.51, 0.49]) + rows("transfer", 0, [0.60, 0.61, 0.59])
                         + rows("transfer", 2, [0.58, 0.66, 0.62]), columns=SWEEP_COLUMNS)
    ablation_table = pd.DataFrame(
        [dict(r, variant=v) for v, accs in [("full", [0.60, 0.61, 0.59]), ("no_aux_lm", [0.60, 0.62, 0.58]),
                                            ("no_pretraining", [0.50, 0.51, 0.49])]
         for r in rows(v, None, accs)], columns=SWEEP_COLUMNS).drop(columns="layers_transferred")
    lines = transfer_module.findings(sweep, ablation_table)
    assert lines[0].startswith("sentiment (dev, chance 0.50, 3 seeds): no pretraining 0.500; by layers transferred "
                               "0: 0.600, 2: 0.620.")
    # 2 layers: mean 0.62 against 0.60 with a seed spread of 0.04: within noise; both far above 0.50.
    assert lines[1] == ("  - all 2 layers are above no pretraining, and level with 0 layers; "
                        "0 layers are above no pretraining.")
    assert lines[2] == ("ablation, sentiment: full 0.600 is level with no auxiliary LM (0.600) "
                        "and above no pretraining (0.500).")
