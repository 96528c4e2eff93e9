"""The benchmark harness on tiny workloads: that it runs and writes well-formed results.

No timing assertions (the machines are shared and noisy): only structure and arithmetic.
"""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import harness  # noqa: E402
import run as bench_run  # noqa: E402


def test_compare_alternates_and_reports_ratios():
    calls = []

    def contender(name, work):
        def go():
            calls.append(name)
            return work
        return go

    table = harness.compare("toy", {"a": contender("a", 10), "b": contender("b", 10)}, unit="items/s",
                            baseline="b", rounds=3, warmup=1)
    assert calls == ["a", "b"] * 4  # A B A B ..., warm-up round included
    assert list(table.columns) == harness.RESULT_COLUMNS
    assert table.set_index("contender").loc["b", "ratio"] == 1.0
    assert (table["median"] > 0).all() and (table["rounds"] == 3).all()
    with pytest.raises(ValueError, match="baseline 'c' is not one of the contenders"):
        harness.compare("toy", {"a": contender("a", 1)}, unit="x", baseline="c")


def test_report_is_well_formed_json_and_markdown(tmp_path):
    table = harness.compare("toy", {"a": lambda: 5, "b": lambda: 5}, unit="items/s", baseline="a", rounds=2)
    json_path, md_path = harness.write_report(table, tmp_path)
    payload = json.loads(json_path.read_text())
    assert {"cpu", "cores", "torch", "device"} <= set(payload["machine"])
    assert pd.DataFrame(payload["results"]).shape == (2, len(harness.RESULT_COLUMNS))
    markdown = md_path.read_text()
    assert "| toy | a |" in markdown and "1.00x vs a" in markdown


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
