"""The thread pool a deploy runs its requests in (HEADs of the plan, uploads, reads through the CDN)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

J = TypeVar("J")
R = TypeVar("R")

__all__ = ["run_parallel"]


def run_parallel(jobs: Sequence[J], fn: Callable[[J], R], workers: int) -> list[R]:
    """`fn` over `jobs` in at most `workers` threads, results in the jobs' order. The first failure
    cancels the jobs that have not started (a deploy must not go on past a failed upload) and is raised."""
    if not jobs:
        return []
    if workers <= 1 or len(jobs) == 1:
        return [fn(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures: list[Future[R]] = [pool.submit(fn, j) for j in jobs]
        wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            error = f.exception() if f.done() else None
            if error is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise error
        return [f.result() for f in futures]
