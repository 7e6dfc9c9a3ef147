"""docs/make_real_gallery.py: which trials the README's real-photo gallery shows (fixed in
advance, never by outcome) and how each panel's caption reads its outcome."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from trainers.evaluate.real_protocol import Answer, score_answer

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "make_real_gallery.py"


@pytest.fixture(scope="module")
def gallery():
    spec = importlib.util.spec_from_file_location("make_real_gallery", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trial(id_, category, present=True):
    boxes = np.array([[10.0, 10.0, 50.0, 50.0]]) if present else np.zeros((0, 4))
    return SimpleNamespace(id=id_, category=category, present=present, gt_boxes=boxes)


def test_the_lowest_ids_of_every_category_in_the_sets_order(gallery):
    trials = [_trial(i, c) for i, c in [(7, "blur"), (3, "blur"), (9, "small"), (5, "blur")]]
    trials += [_trial(1, "small"), _trial(2, "absent", present=False)]
    picked = gallery.pick_trials(trials, per_category=2)
    assert [(t.category, t.id) for t in picked] == [
        ("blur", 3), ("blur", 5), ("small", 1), ("small", 9), ("absent", 2)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "present, boxes, scores, expected",
    [
        (True, [[12, 12, 50, 50]], [0.9], "found, p=0.90, IoU 0.90"),
        (True, [[100, 100, 140, 140]], [0.8], "MISSED: wrong box p=0.80 (IoU 0.00)"),
        (True, [[10, 10, 50, 50]], [0.2], "MISSED: nothing >= 0.50 (top p=0.20, IoU 1.00)"),
        (True, [], [], "MISSED: nothing >= 0.50 (top p=0.00, IoU 0.00)"),
        (False, [[0, 0, 20, 20]], [0.7], "FALSE POSITIVE (top p=0.70)"),
        (False, [[0, 0, 20, 20]], [0.3], "correctly nothing >= 0.50 (top p=0.30)"),
    ],
)
def test_captions_say_what_happened(gallery, present, boxes, scores, expected):
    trial = _trial(1, "any", present)
    answer = Answer(1, np.array(boxes, float).reshape(-1, 4), np.array(scores, float), None, 0.0)
    outcome = score_answer(trial, answer, threshold=0.5)
    assert gallery.verdict(outcome, 0.5) == expected
