"""One process-wide thread pool for match mode's independent stages.

After the shared Siamese search, ``match_many`` re-scores, limits and masks each reference
on its own (embedder squares, RootSIFT correspondences and RANSAC fits, template matching,
the mask branch); the scene's keypoints and template-matching pyramid do not depend on the
search either. Those stages spend their time in OpenCV, NumPy and torch calls that release
the GIL, so on a machine with several cores they run side by side: the results are the same
as one after another (to float rounding: a square's embedding may be computed in another
batch), only the wall time changes.

Workers: ``SIAMMATCH_MATCH_THREADS`` when set (``1`` runs everything in the calling thread),
otherwise torch's intra-op thread count, i.e. the cores this process is meant to use
(``siammatch serve`` sets ``OMP_NUM_THREADS`` to each worker's share). The pool is shared by
every request thread of a process, so it bounds the extra threads whatever the load. A task
that itself asks for the pool runs its part in its own thread (no nested waits on a full
pool), and a forked child builds a pool of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

from matcher.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

#: The environment variable that sets the number of workers.
ENV = "SIAMMATCH_MATCH_THREADS"
#: Most workers a pool may have.
MAX_THREADS = 64

_LOCK = threading.Lock()
_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)
_LOCAL = threading.local()


def match_threads() -> int:
    """The number of workers (see the module docstring).

    Raises:
        ConfigError: ``SIAMMATCH_MATCH_THREADS`` is not an integer from 1 to 64.
    """
    text = os.environ.get(ENV, "").strip()
    if not text:
        return max(1, min(MAX_THREADS, torch.get_num_threads()))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_THREADS:
        raise ConfigError(f"{ENV} must be an integer from 1 to {MAX_THREADS}, got {text!r}")
    return value


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        pid = os.getpid()
        if _POOL is None or _POOL[0] != pid or _POOL[1] != workers:
            if _POOL is not None and _POOL[0] == pid:
                _POOL[2].shutdown(wait=False)
            pool = ThreadPoolExecutor(workers, thread_name_prefix="siammatch-match")
            _POOL = (pid, workers, pool)
        return _POOL[2]


def _inline() -> bool:
    return bool(getattr(_LOCAL, "worker", False))


def _as_worker(fn: Callable[..., R], *args: object) -> R:
    _LOCAL.worker = True
    try:
        return fn(*args)
    finally:
        _LOCAL.worker = False


def submit(fn: Callable[..., R], *args: object) -> Future[R]:
    """Start ``fn(*args)`` on the pool; with one worker, or from a pool task, run it now
    (the returned future is then already done, holding the result or the exception)."""
    workers = match_threads()
    if workers > 1 and not _inline():
        return _pool(workers).submit(_as_worker, fn, *args)
    done: Future[R] = Future()
    try:
        done.set_result(fn(*args))
    except BaseException as error:  # handed to the caller by Future.result()
        done.set_exception(error)
    return done


def thread_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, spread over the pool (see the module docstring); the
    first exception, in item order, is raised once every item has finished."""
    items = list(items)
    workers = match_threads()
    if workers == 1 or len(items) < 2 or _inline():
        return [fn(x) for x in items]
    futures = [_pool(workers).submit(_as_worker, fn, x) for x in items]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]
