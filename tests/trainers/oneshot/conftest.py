"""Fixtures of the one-shot COCO evaluation tests: the hand-made set of
:mod:`tests.trainers.oneshot.helpers`, written and loaded once per test module."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.trainers.oneshot.helpers import make_dataset
from trainers.evaluate.oneshot.data import load_dataset
from trainers.evaluate.oneshot.splits import load_split_file


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> SimpleNamespace:
    paths = make_dataset(tmp_path_factory.mktemp("oneshot"))
    dataset = load_dataset(paths["ann"])
    split = load_split_file(paths["split"], dataset.categories)
    return SimpleNamespace(paths=paths, dataset=dataset, split=split)
