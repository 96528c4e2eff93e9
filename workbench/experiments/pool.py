"""Independent cached computations (fine-tuning runs, probe sets, pretraining runs) side by side.

On a CPU, a run that fixes its thread count leaves the other cores idle; running cores / threads
such runs at once, each in its own spawned process, uses them without changing any run's numbers.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

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
    ``workers - 1`` spawned processes, each handed one call at a time; once ``first`` is done, this
    process takes the others nobody has started, last first, so that every core stays busy to the end
    (a pool's own queue would hold calls for a busy worker). Results in the order first, *others."""
    if not others or workers <= 1:
        return [function(*call) for call in (first, *others)]
    pending, lock = list(range(len(others))), threading.Lock()
    results: list = [None] * (1 + len(others))

    def take(last: bool) -> int | None:
        with lock:
            return (pending.pop() if last else pending.pop(0)) if pending else None

    def feed(pool: ProcessPoolExecutor) -> None:
        while (i := take(last=False)) is not None:
            results[1 + i] = pool.submit(function, *others[i]).result()

    with ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with ThreadPoolExecutor(workers - 1) as feeders:
            feeding = [feeders.submit(feed, pool) for _ in range(workers - 1)]
            try:
                results[0] = function(*first)
                while (i := take(last=True)) is not None:
                    results[1 + i] = function(*others[i])
            finally:
                with lock:
                    pending.clear()  # on an error here, start nothing more
            for future in feeding:
                future.result()
    return results
