"""The fine-tuning pilot of 03 (issue 22), on the dev split only: learning rate and lambda for
each in-domain task, from the last checkpoint of the CPU recipe's pretraining run, every layer
transferred, and without pretraining, with each task head. Prints one row per run: dev accuracy, the predicted-class
share, the last logged task loss. Choices made from it are recorded in 03's history cell.

    python bench/finetune_pilot.py [--seeds 0 1] [--tasks corrupted_pair corrupted_sentence]
    python bench/finetune_pilot.py --tasks corrupted_pair --lrs 3e-4 1e-3 --heads linear likelihood
"""

from __future__ import annotations

import argparse
import itertools

import pandas as pd

from workbench.core.options import apply_overrides
from workbench.experiments.pretraining import pretrain
from workbench.experiments.recipes import RECIPES
from workbench.experiments.transfer import _job, _run_jobs, predicted_share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["corrupted_pair", "corrupted_sentence"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--lrs", nargs="+", type=float, default=[3e-4, 1e-3, 3e-3])
    parser.add_argument("--lm-weights", nargs="+", type=float, default=[0.0, 0.5])
    parser.add_argument(
        "--heads", nargs="+", default=["linear"], help="task heads (workbench.training.finetuning.HEADS)"
    )
    args = parser.parse_args()
    recipe = RECIPES["cpu"]
    run = pretrain(recipe.pretraining, progress=False)
    jobs = []
    for task in args.tasks:
        for lr, head in itertools.product(args.lrs, args.heads):
            settings = apply_overrides(recipe.finetuning, {"train": {"lr": lr}, "head": head})
            for lm_weight in args.lm_weights:
                for seed in args.seeds:
                    n = recipe.n_labelled(task)
                    jobs.append(("full", lr, _job(run, task, None, seed, n, lm_weight, settings, None)))
                    jobs.append(("no_pretraining", lr, _job(None, task, None, seed, n, lm_weight, settings, run.spec)))
    results = _run_jobs([job for _, _, job in jobs], "pilot runs", True)
    rows = [
        dict(
            task=job.task,
            variant=variant,
            head=job.settings.head,
            lr=lr,
            lm_weight=job.lm_weight,
            seed=job.seed,
            dev_accuracy=result["dev_accuracy"],
            predicted_share=predicted_share(job.task, "dev", job.spec.data_seed, result["dev_correct"]),
            first_task_loss=result["curve"]["task_loss"][0],
            final_task_loss=result["final_task_loss"],
            seconds=result["seconds"],
        )
        for (variant, lr, job), result in zip(jobs, results)
    ]
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
