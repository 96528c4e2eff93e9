"""The benchmark harness on tiny workloads: that it runs and writes well-formed results.

No timing assertions (the machines are shared and noisy): only structure and arithmetic.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from workbench import GPTConfig

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import bench_train  # noqa: E402
import harness  # noqa: E402
import run as bench_run  # noqa: E402

COLUMNS = harness.RESULT_COLUMNS + harness.EXTRA_COLUMNS


def run_bench(script: str, *args: str, csv: Path) -> tuple[pd.DataFrame, str]:
    """Run a benchmark script in its own process, as ``make bench`` does: its CSV and its output.

    On one thread: on a busy 2-core machine, spinning OpenMP threads make tiny steps up to 100x
    slower, and no timing is checked here.
    """
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--csv", str(csv)],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 0, result.stderr
    return pd.read_csv(csv), result.stdout


def assert_well_formed(table: pd.DataFrame, baseline: str, baselines: dict[str, str] | None = None) -> None:
    """Every column filled, throughput, MFU and memory positive, precisions named, ratios vs each
    contender's baseline (``baselines[contender]``, else ``baseline``) and their range over rounds."""
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert table[COLUMNS].notna().all(axis=None)
    assert (table[["median", "mfu", "peak_memory_mb"]] > 0).all(axis=None)
    assert set(table["precision"]) <= {"fp32", "bf16"}
    expected = [(baselines or {}).get(name, baseline) for name in table["contender"]]
    assert list(table["baseline"]) == expected
    medians = table.set_index("contender")["median"]
    assert table["ratio"].tolist() == pytest.approx(
        [medians[c] / medians[b] for c, b in zip(table["contender"], expected)]
    )
    assert (table["ratio_low"] <= table["ratio"] + 1e-12).all() and (
        table["ratio"] <= table["ratio_high"] + 1e-12
    ).all()


def test_compare_alternates_and_reports_ratios():
    calls = []

    def contender(name, work):
        def go():
            calls.append(name)
            return work

        return go

    table = harness.compare(
        "toy", {"a": contender("a", 10), "b": contender("b", 10)}, unit="items/s", baseline="b", rounds=3, warmup=1
    )
    assert calls == ["a", "b"] * 4  # A B A B ..., warm-up round included
    assert list(table.columns) == harness.RESULT_COLUMNS + ["ratio_low", "ratio_high"]
    assert table.set_index("contender").loc["b", ["ratio", "ratio_low", "ratio_high"]].tolist() == [1.0] * 3
    assert (table["median"] > 0).all() and (table["rounds"] == 3).all()
    with pytest.raises(ValueError, match=r"baselines \['c'\] are not among the contenders"):
        harness.compare("toy", {"a": contender("a", 1)}, unit="x", baseline="c")


def test_each_contender_can_have_its_own_baseline_and_ratio_range():
    work = {"a": iter([1, 2, 4, 8]), "b": iter([1, 1, 1, 1]), "c": iter([1, 2, 2, 2])}
    clock = iter(range(100))
    # time.perf_counter advances by 1 per call, so each call takes 1 s and its throughput is its work
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(harness.time, "perf_counter", lambda: next(clock))
        table = harness.compare(
            "toy",
            {n: (lambda n=n: next(work[n])) for n in work},
            "items/s",
            baseline="b",
            rounds=3,
            baselines={"c": "a"},
        ).set_index("contender")
    assert table.loc["a", "baseline"] == "b" and table.loc["c", "baseline"] == "a"
    assert table.loc["a", "median"] == 4 and table.loc["a", "ratio"] == 4.0
    assert table.loc["c", "ratio"] == 0.5  # median 2 / median 4
    assert (table.loc["c", "ratio_low"], table.loc["c", "ratio_high"]) == (0.25, 1.0)  # rounds: 2/2, 2/4, 2/8


def test_report_is_well_formed_json_and_markdown(tmp_path):
    table = harness.compare("toy", {"a": lambda: 5, "b": lambda: 5}, unit="items/s", baseline="a", rounds=2)
    table["mfu"] = [0.5, float("nan")]
    json_path, md_path = harness.write_report(table, tmp_path)
    payload = json.loads(json_path.read_text(), parse_constant=pytest.fail)  # NaN is not JSON
    assert {"cpu", "cores", "torch", "device", "precision", "cpu_capability"} <= set(payload["machine"])
    assert payload["machine"]["precision"] in ("fp32", "bf16")
    assert pd.DataFrame(payload["results"]).shape == (2, len(harness.RESULT_COLUMNS) + 3)
    assert [row["mfu"] for row in payload["results"]] == [0.5, None]
    markdown = md_path.read_text()
    assert "| toy | a |  |" in markdown and "1.00x vs a | 50.0% |  |" in markdown
    assert "x [" in markdown  # b's ratio to a with its range over rounds


def test_extra_columns_survive_run_script_and_show_in_markdown(tmp_path):
    script = tmp_path / "bench_toy.py"
    script.write_text(
        textwrap.dedent("""\
        import sys
        import pandas as pd
        row = dict(benchmark="toy", contender="a", unit="items/s", median=2.0, spread=0.0, rounds=1,
                   ratio=1.0, baseline="a", mfu=0.125, examples=3)
        pd.DataFrame([row]).to_csv(sys.argv[sys.argv.index("--csv") + 1], index=False)
    """)
    )
    table = bench_run.run_script(script, rounds=None, extra=[])
    assert list(table.columns) == COLUMNS  # the extra columns it wrote kept, the rest NaN
    assert table.loc[0, "mfu"] == 0.125 and table[["precision", "peak_memory_mb"]].isna().all(axis=None)
    markdown = harness.markdown_table(table, harness.machine())
    assert "| toy | a |  | 2.0 items/s | 0.0 | 1.00x vs a | 12.5% |  |" in markdown


def test_readme_table_is_replaced_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench_run.START}\nold\n{bench_run.END}\nafter\n")
    bench_run.update_readme("| new |\n", readme)
    assert readme.read_text() == f"intro\n{bench_run.START}\n| new |\n{bench_run.END}\nafter\n"
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="no <!-- bench:start -->"):
        bench_run.update_readme("x", readme)


def test_unknown_benchmark_is_named():
    with pytest.raises(SystemExit, match=r"unknown benchmarks \['warp'\]"):
        bench_run.discover(["warp"])


def test_flops_count_agrees_with_the_trainer_and_a_wrong_count_fails_loudly():
    tokens = bench_train.text_tokens()
    config = GPTConfig.from_preset("gpt2-micro", dropout=0.0)  # SDPA's CPU flash kernel: our formula counts it
    contender = bench_train.TrainerContender(tokens, config, 1, batch_size=2, device="cpu")
    counted = bench_train.checked_flops_per_token(contender)
    assert counted == pytest.approx(contender.trainer.flops_per_token, rel=0.05)
    wrong = bench_train.TrainerContender(tokens, config, 1, batch_size=2, device="cpu", flops_per_token=1e3)
    with pytest.raises(SystemExit, match=r"counted [\d,]+, the Trainer's 1,000"):
        bench_train.checked_flops_per_token(wrong)


@pytest.mark.train
def test_training_benchmark_runs_tiny(tmp_path):
    table, printed = run_bench(
        "bench_train.py",
        "--preset",
        "gpt2-micro",
        "--batch",
        "2",
        "--steps",
        "1",
        "--rounds",
        "1",
        csv=tmp_path / "train.csv",
    )
    assert_well_formed(table, baseline="hugging face fp32", baselines=bench_train.EQUAL_PRECISION)
    assert list(table["contender"]) == ["hugging face fp32", "workbench fp32", "hugging face bf16", "workbench bf16"]
    assert "workbench bf16 vs hugging face bf16:" in printed
    assert "FLOPs per token: counted by torch" in printed and "MFU logged by the Trainer" in printed


@pytest.mark.train
def test_gpu_profile_runs_tiny_on_the_cpu(tmp_path):
    table, printed = run_bench("bench_gpu.py", "--tiny", csv=tmp_path / "gpu.csv")
    assert_well_formed(table, baseline="trainer eager")
    assert list(table["contender"]) == ["trainer eager"] and list(table["precision"]) == ["bf16"]
    assert "gpt2-micro, batch 2 x 64" in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine runs the GPU profile for real")
def test_gpu_profile_without_cuda_writes_the_header_only(tmp_path):
    table, printed = run_bench("bench_gpu.py", csv=tmp_path / "gpu.csv")
    assert list(table.columns) == COLUMNS and table.empty
    assert "needs a CUDA device" in printed
