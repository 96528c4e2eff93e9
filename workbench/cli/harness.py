"""``python -m workbench lm-eval RUN_OR_CHECKPOINT --tasks ...``: lm-evaluation-harness tasks on a checkpoint.

The checkpoint (GPT or LSTM) is evaluated as it is, by the harness's ``workbench`` model
(:mod:`workbench.evaluation.harness`); the results table is printed, and written as JSON with ``--output``.
"""

from __future__ import annotations

import argparse
import json

from ..core.io import write_text_atomic
from ..evaluation import harness
from . import UsageError, arguments

add_arguments = arguments.lm_eval  # in .arguments: `lm-eval --help` need not import lm_eval


def run(args: argparse.Namespace) -> int:
    if args.only_include_path and args.include_path is None:
        raise UsageError("--only-include-path needs --include-path DIR, the folder of task YAML files to look in")
    model = harness.WorkbenchLM(checkpoint=args.source, batch_size=args.batch_size, device=args.device)
    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    results = harness.evaluate(
        model, tasks, args.include_path, args.num_fewshot, args.limit, builtin_tasks=not args.only_include_path
    )
    print(harness.results_table(results))
    if args.output is not None:
        write_text_atomic(args.output, json.dumps(results["results"], indent=1, default=str))
    return 0
