"""Match mode's thread pool (matcher/inference/parallel.py) and the scene-bound verifier
that lets the pool's threads share embedded squares (matcher/inference/verify.py)."""

from __future__ import annotations

import multiprocessing
import threading
import time

import numpy as np
import pytest

import matcher
from matcher.errors import ConfigError
from matcher.inference import parallel
from matcher.inference.parallel import ENV, match_threads, submit, thread_map
from matcher.inference.verify import SceneVerifier
from tests.helpers import clutter_scene, paste, product_image


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv(ENV, "2")


def test_the_setting_is_read_and_checked(monkeypatch):
    monkeypatch.setenv(ENV, "3")
    assert match_threads() == 3
    for bad in ("0", "65", "two", "1.5"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ConfigError, match=ENV):
            match_threads()
    monkeypatch.delenv(ENV)
    assert match_threads() >= 1


def test_thread_map_keeps_order_and_uses_other_threads(two_threads):
    barrier = threading.Barrier(2, timeout=10)

    def work(x: int) -> tuple[int, str]:
        if x < 2:  # the first two items run at the same time, or the barrier times out
            barrier.wait()
        time.sleep(0.001 * (5 - x))
        return x * x, threading.current_thread().name

    out = thread_map(work, range(5))
    assert [v for v, _ in out] == [0, 1, 4, 9, 16]
    assert all(name.startswith("siammatch-match") for _, name in out)


def test_one_thread_runs_everything_in_the_caller(monkeypatch):
    monkeypatch.setenv(ENV, "1")
    me = threading.get_ident()
    assert thread_map(lambda _: threading.get_ident(), range(3)) == [me] * 3
    job = submit(threading.get_ident)
    assert job.done() and job.result() == me
    failed = submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.result()


def test_the_first_failure_in_item_order_is_raised_after_all_finish(two_threads):
    finished = []

    def work(x: int) -> int:
        if x in (1, 3):
            raise ValueError(f"item {x}")
        time.sleep(0.01)
        finished.append(x)
        return x

    with pytest.raises(ValueError, match="item 1"):
        thread_map(work, range(5))
    assert sorted(finished) == [0, 2, 4]


def test_a_task_that_maps_again_does_not_wait_on_the_full_pool(two_threads):
    """Four outer tasks on two workers, each mapping three inner items: the inner maps run
    in the task's own thread instead of queueing behind the outer tasks."""

    def outer(x: int) -> list[int]:
        return thread_map(lambda y: x * 10 + y, range(3))

    assert thread_map(outer, range(4)) == [[10 * x + y for y in range(3)] for x in range(4)]


def _child(queue) -> None:
    queue.put(thread_map(lambda x: x + 1, range(4)))


def test_a_forked_child_builds_its_own_pool(two_threads):
    thread_map(lambda x: x, range(4))  # the parent's pool exists (and its threads)
    parent_pool = parallel._POOL
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == [1, 2, 3, 4]
    assert parallel._POOL is parent_pool


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    base = clutter_scene(240, 320, seed=5)
    return paste(
        paste(base, product_image("coffee"), (40, 50, 120, 130)),
        product_image("rocket"),
        (200, 60, 280, 140),
    )


def test_scene_verifier_embeds_each_square_once_across_threads(scene, two_threads):
    shipped = matcher.load("siammask_small")
    plain = shipped.verifier
    bound = plain.shared_scene(scene)
    assert isinstance(bound, SceneVerifier)
    embedded: list[int] = []
    inner = plain.embedder.embed

    def counting(images, **kwargs):
        embedded.append(len(images))
        time.sleep(0.05)  # keep the first caller busy while the others ask
        return inner(images, **kwargs)

    plain.embedder.embed = counting
    try:
        reference = plain.embed_reference(product_image("coffee"), (0, 0, 80, 80))
        boxes = [(40, 50, 120, 130), (200, 60, 280, 140), (10, 10, 60, 60)]
        embedded.clear()
        got = thread_map(lambda _: bound.similarities(reference, scene, boxes), range(6))
        assert sum(embedded) == len(boxes)  # six threads, each square embedded once
        want = plain.similarities(reference, scene, boxes)
        for sims in got:
            np.testing.assert_allclose(sims, want, atol=1e-5)
        # another scene is embedded as by the plain verifier, every time
        other = np.ascontiguousarray(scene[::-1])
        embedded.clear()
        bound.similarities(reference, other, boxes)
        bound.similarities(reference, other, boxes)
        assert sum(embedded) == 2 * len(boxes)
    finally:
        plain.embedder.embed = inner


def test_match_many_on_threads_equals_one_thread(scene, monkeypatch):
    shipped = matcher.load("siammask_small")
    refs = [
        matcher.Reference.from_image(product_image(kind), id=kind)
        for kind in ("coffee", "rocket", "astronaut")
    ]
    monkeypatch.setenv(ENV, "1")
    alone = shipped.match_many(refs, scene, score_threshold=0.0)
    monkeypatch.setenv(ENV, "2")
    threaded = shipped.match_many(refs, scene, score_threshold=0.0)
    assert sum(len(r.instances) for r in alone) > 0
    for got, want in zip(threaded, alone, strict=True):
        assert got.reference_id == want.reference_id
        assert len(got.instances) == len(want.instances)
        for a, b in zip(got.instances, want.instances, strict=True):
            assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-4
            assert (a.mask is None) == (b.mask is None)
            if a.mask is not None:
                assert (a.mask != b.mask).mean() < 1e-3
