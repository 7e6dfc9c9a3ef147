"""Catalog retrieval metrics (``trainers.evaluate.retrieval``)."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.crops import square_crop
from matcher.errors import InvalidArgumentError
from trainers.evaluate.retrieval import recall_at


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_recall_matches_a_brute_force_ranking():
    rng = np.random.default_rng(0)
    xb = _unit(rng.normal(size=(30, 8))).astype(np.float32)
    ids = list(range(100, 130))
    truth = rng.integers(100, 130, size=50)
    xq = _unit(xb[truth - 100] + rng.normal(scale=0.6, size=(50, 8))).astype(np.float32)
    report = recall_at(xb, ids, xq, truth.tolist(), ks=(1, 5, 10))
    ranks = []
    for q, t in zip(xq, truth, strict=True):
        order = [ids[i] for i in np.argsort(-(xb @ q), kind="stable")]
        ranks.append(order.index(t) + 1)
    ranks = np.array(ranks)
    for k in (1, 5, 10):
        assert report.recall[k] == pytest.approx(float((ranks <= k).mean()))
    assert report.mean_rank == pytest.approx(ranks.mean())
    assert report.recall[1] <= report.recall[5] <= report.recall[10]


def test_perfect_and_worst_cases():
    xb = np.eye(4, dtype=np.float32)
    perfect = recall_at(xb, [1, 2, 3, 4], xb, [1, 2, 3, 4], ks=(1,))
    assert perfect.recall[1] == 1.0 and perfect.mean_rank == 1.0
    worst = recall_at(xb, [1, 2, 3, 4], -xb, [1, 2, 3, 4], ks=(1, 3))
    assert worst.recall[1] == 0.0 and worst.recall[3] == 0.0
    with pytest.raises(InvalidArgumentError):
        recall_at(xb, [1, 2, 3, 4], xb[:0], [], ks=(1,))


def test_square_crop_is_centred_and_clipped():
    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3)
    crop = square_crop(image, (50, 40, 70, 60), context=1.0)  # 40x40 around (60, 50)
    assert crop.shape[:2] == (40, 40)
    assert (crop[0, 0] == image[30, 40]).all()
    edge = square_crop(image, (0, 0, 20, 10), context=0.0)  # 20x20 around (10, 5): clipped
    assert edge.shape[:2] == (15, 20)
