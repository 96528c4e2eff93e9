"""Data preparation speed: everything from a warm download cache, and encoding throughput.

1. ``prepare``: a fresh data directory holding only the downloaded archives (hard links to the
   real cache), then ``workbench.data.prepare.prepare()`` in a new Python process: extract, read
   and clean every source, train the 8192-token BPE, pack train/val, count sizes, build the tasks.
   Timed end to end (interpreter start and imports included) and per step; run again to time the
   fully cached path. Target: under 60 s on a 2-core machine.
2. ``encode``: tokens/s encoding the training split with the corpus BPE and with GPT-2's, batched
   through the Rust tokenizer (how ``pack_tokens`` encodes) against one ``encode`` call per
   document, alternating rounds (``harness.compare``).

    .venv/bin/python bench/bench_data.py [--rounds 3] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from harness import compare, machine

from workbench.data.corpus import corpus_split
from workbench.data.prepare import corpus_tokenizer
from workbench.data.sources import SOURCES, fetch
from workbench.data.tokenizer import gpt2_tokenizer

PREPARE = (
    "import json; from workbench.data.prepare import prepare; "
    "r = prepare(progress=False); "
    "print(json.dumps(dict(timings=r['timings'], tokens={s: m['tokens'] for s, m in r['manifests'].items()})))"
)


def time_prepare(data_dir: Path) -> dict:
    env = dict(os.environ, WORKBENCH_DATA_DIR=str(data_dir))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PREPARE], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"prepare failed:\n{result.stderr}")
    return dict(seconds=seconds, **json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="timed encoding rounds per contender")
    parser.add_argument("--csv", default=None, help="also write the encoding table to this CSV")
    args = parser.parse_args()
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, python {info['python']}")

    archives = {name: fetch(name) for name in SOURCES}  # the warm download cache
    with tempfile.TemporaryDirectory(prefix="bench-data-") as directory:
        data_dir = Path(directory)
        (data_dir / "archives").mkdir()
        for path in archives.values():
            os.link(path, data_dir / "archives" / path.name)
        cold, warm = time_prepare(data_dir), time_prepare(data_dir)
    print(
        f"\nprepare from a warm download cache: {cold['seconds']:.1f} s (target < 60 s); "
        f"again with everything cached: {warm['seconds']:.1f} s"
    )
    print("steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in cold["timings"].items()))
    print(f"packed tokens: {cold['tokens']}")

    texts = [d.text for d in corpus_split("train")]
    characters = sum(map(len, texts))
    table_rows = []
    for label, tokenizer in (("corpus BPE 8192", corpus_tokenizer()), ("GPT-2", gpt2_tokenizer())):
        tokens = sum(map(len, tokenizer.encode_batch(texts)))
        results = compare(
            f"encode train split ({label})",
            {
                "encode_batch (Rust, parallel)": lambda t=tokenizer, n=tokens: (t.encode_batch(texts), n)[1],
                "encode per document": lambda t=tokenizer, n=tokens: ([t.encode(x) for x in texts], n)[1],
            },
            unit="tokens/s",
            baseline="encode per document",
            rounds=args.rounds,
        )
        table_rows.append(results.assign(tokens=tokens, characters=characters))
    table = pd.concat(table_rows, ignore_index=True)
    print()
    print(
        table[["benchmark", "contender", "median", "spread", "ratio", "tokens"]].to_string(
            index=False, float_format=lambda x: f"{x:,.2f}"
        )
    )
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
