"""Independent cached computations (fine-tuning runs, probe sets, pretraining runs) side by side.

On a CPU, a run that fixes its thread count leaves the other cores idle; running cores / threads
such runs at once, each in its own spawned process, uses them without changing any run's numbers.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from ..core.device import resolve_device
from ..core.progress import tqdm


def cpu_workers(threads: int | None, device: str) -> int:
    """Runs at once: cores / ``threads`` on a CPU when each run fixes its threads, else one."""
    if threads is None or resolve_device(device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // threads)


def in_pool(function, calls: list[tuple], workers: int, desc: str, progress: bool, total: int) -> list:
    """``function(*call)`` for every call, in ``workers`` spawned processes when more than one
    (results in the order of ``calls``); the progress bar counts ``total``, the rest being cached."""
    results: list = [None] * len(calls)
    with tqdm(total=total, initial=total - len(calls), desc=desc, unit="run", disable=not progress) as bar:
        if min(workers, len(calls)) <= 1:
            for i, call in enumerate(calls):
                results[i] = function(*call)
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(function, *call): i for i, call in enumerate(calls)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    return results


def beside(function, first: tuple, others: list[tuple], workers: int) -> list:
    """``function(*first)`` in this process (its progress bar stays visible) while ``others`` run in
    ``workers - 1`` spawned processes; once ``first`` is done, this process takes the others the pool
    has not started, last first, so that every core stays busy; results in the order first, *others."""
    if not others or workers <= 1:
        return [function(*call) for call in (first, *others)]
    with ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(function, *call) for call in others]
        results = [function(*first), *([None] * len(others))]
        for i in reversed(range(len(others))):
            if futures[i].cancel():
                results[1 + i] = function(*others[i])
        for i, future in enumerate(futures):
            if not future.cancelled():
                results[1 + i] = future.result()
        return results
