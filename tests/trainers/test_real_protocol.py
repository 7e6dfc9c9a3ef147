"""The real-photo protocol: ranking and calibration metrics against hand-computed answers and
a brute-force reference, scoring at a threshold, per-category aggregation, the document's
checks, the reliability diagram, and an end-to-end run on a tiny hand-built set."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import matcher
from matcher.mask_codec import encode_rle
from matcher.structures import Instance, MatchResult
from tests.trainers.real_set_helpers import SCENES, box_mask, write_tiny_real_set
from trainers.evaluate import real_protocol as protocol
from trainers.evaluate.calibration import (
    auroc,
    average_ranks,
    expected_calibration_error,
    reliability_bins,
)
from trainers.evaluate.real_summary import RealSummary, markdown_real, summarise_real
from trainers.evaluate.reliability_diagram import PALETTE, draw_reliability_diagram


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    return write_tiny_real_set(tmp_path_factory.mktemp("real") / "set")


# -- AUROC --------------------------------------------------------------------------------


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(average_ranks([3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0])
    np.testing.assert_array_equal(average_ranks([5.0, 5.0, 5.0]), [2.0, 2.0, 2.0])
    assert average_ranks([]).shape == (0,)


def test_auroc_known_answers():
    labels = [0, 0, 1, 1]
    assert auroc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], labels) == 0.5
    # Positives 0.5 and 0.9 against negatives 0.5 and 0.1: pairs 0.5 (tie), 1, 1, 1.
    assert auroc([0.5, 0.1, 0.5, 0.9], labels) == pytest.approx(3.5 / 4)
    assert auroc([0.3, 0.4], [1, 1]) is None
    assert auroc([0.3, 0.4], [0, 0]) is None
    with pytest.raises(ValueError):
        auroc([0.1, 0.2], [1])


def test_auroc_equals_the_pairwise_count():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 8, 200) / 8.0  # many ties
    labels = rng.random(200) < 0.4
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    brute = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert auroc(scores, labels) == pytest.approx(brute)


# -- calibration --------------------------------------------------------------------------


def test_ece_of_perfectly_calibrated_bins_is_zero():
    # 4 trials at 0.25 with 1 correct, 4 at 0.75 with 3 correct.
    confidences = [0.25] * 4 + [0.75] * 4
    labels = [1, 0, 0, 0, 1, 1, 1, 0]
    assert expected_calibration_error(confidences, labels) == pytest.approx(0.0)


def test_ece_of_an_overconfident_constant_score():
    # Always 0.9, right 6 times in 10: one bin, gap |0.6 - 0.9|.
    assert expected_calibration_error([0.9] * 10, [1] * 6 + [0] * 4) == pytest.approx(0.3)
    # Two bins of 5: 0.9 with 4 right (gap 0.1) and 0.2 with none right (gap 0.2).
    confidences = [0.9] * 5 + [0.2] * 5
    labels = [1, 1, 1, 1, 0] + [0] * 5
    assert expected_calibration_error(confidences, labels) == pytest.approx(0.15)
    assert expected_calibration_error([], []) is None


def test_reliability_bins_edges_and_counts():
    bins = reliability_bins([0.0, 0.05, 0.1, 0.55, 1.0, 1.3, -0.2], [0, 1, 1, 0, 1, 1, 0])
    assert len(bins) == 10
    assert [b.count for b in bins] == [3, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert bins[0].confidence == pytest.approx(0.05 / 3)  # -0.2 clipped to 0
    assert bins[0].accuracy == pytest.approx(1 / 3)
    assert bins[9].confidence == 1.0 and bins[9].accuracy == 1.0  # 1.0 and 1.3 (clipped)
    assert bins[2].confidence is None and bins[2].accuracy is None
    assert bins[0].to_dict()["count"] == 3


# -- scoring ------------------------------------------------------------------------------


def trial(boxes, *, category="several", present=None, masks=None) -> protocol.RealTrial:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return protocol.RealTrial(
        id=1,
        image_id=1,
        file_name="scenes/000001.png",
        reference_id=1,
        reference_file="references/000001.png",
        reference_box=None,
        present=len(boxes) > 0 if present is None else present,
        category=category,
        split="test",
        gt_boxes=boxes,
        gt_masks=masks,
    )


def answer(boxes, scores, latency=1.0) -> protocol.Answer:
    return protocol.Answer(
        trial_id=1,
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        scores=np.asarray(scores, np.float64),
        top_mask_iou=None,
        latency_ms=latency,
    )


GT = [[0, 0, 10, 10], [20, 20, 30, 30]]


def test_greedy_matching_claims_each_true_box_once():
    assert protocol.greedy_matches(np.array(GT), np.array(GT)) == 2
    # Two copies of the first box, then nothing near the second: one match.
    assert protocol.greedy_matches(np.array([[0, 0, 10, 10], [0, 0, 10, 11]]), np.array(GT)) == 1
    # The first prediction claims the box it overlaps most (the first), the second
    # prediction then overlaps only the claimed one: greedy, not an optimal assignment.
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 16]])
    preds = np.array([[0, 0, 10, 11], [0, 0, 10, 7]])
    assert protocol.greedy_matches(preds, gt) == 1
    # IoU just under 0.5 does not match: [0,0,10,10] vs [5,0,15,10] is 50/150.
    assert protocol.greedy_matches(np.array([[5, 0, 15, 10]]), np.array(GT)[:1]) == 0
    assert protocol.greedy_matches(np.zeros((0, 4)), np.array(GT)) == 0
    assert protocol.greedy_matches(np.array(GT), np.zeros((0, 4))) == 0


def test_scores_below_the_threshold_are_kept_but_not_found():
    t = trial(GT)
    a = answer([[20, 20, 30, 30], [50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8, 0.6])
    high = protocol.score_answer(t, a, threshold=0.7)
    assert (high.top_score, high.iou, high.found, high.success) == (0.9, 1.0, True, True)
    assert (high.num_gt, high.num_matched) == (2, 1)
    low = protocol.score_answer(t, a, threshold=0.5)
    assert low.num_matched == 2
    missed = protocol.score_answer(t, a, threshold=0.95)
    assert (missed.found, missed.success, missed.num_matched) == (False, False, 0)
    assert missed.iou == 1.0 and missed.correct  # the calibration label ignores the threshold
    # Unsorted answers are sorted by score first.
    shuffled = answer([[0, 0, 10, 10], [20, 20, 30, 30]], [0.6, 0.9])
    assert protocol.score_answer(t, shuffled, threshold=0.7).num_matched == 1
    nothing = protocol.score_answer(t, answer(np.zeros((0, 4)), []), threshold=0.5)
    assert (nothing.top_score, nothing.iou, nothing.found) == (0.0, 0.0, False)


def test_absent_trials_count_false_positives():
    t = trial(np.zeros((0, 4)), category="absent")
    a = answer([[0, 0, 10, 10]], [0.4])
    assert protocol.score_answer(t, a, threshold=0.3).found
    assert not protocol.score_answer(t, a, threshold=0.5).found
    assert protocol.score_answer(t, a, threshold=0.3).iou == 0.0


def outcome(category, *, present=True, score=0.9, iou=1.0, found=True, gt=1, matched=1, ms=1.0):
    return protocol.RealOutcome(
        trial_id=0,
        category=category,
        present=present,
        top_score=score,
        iou=iou,
        found=found,
        num_gt=gt if present else 0,
        num_matched=matched if present else 0,
        mask_iou=None,
        latency_ms=ms,
    )


def test_summary_per_category_and_known_values():
    outcomes = [
        outcome("two_view", score=0.9, iou=0.8, ms=10.0),
        outcome("two_view", score=0.7, iou=0.3, ms=20.0),  # found, wrong place
        outcome("blur", score=0.2, iou=0.9, found=False, ms=30.0),  # right place, too low
        outcome("several", score=0.95, iou=0.7, gt=3, matched=2, ms=40.0),
        outcome("several", score=0.85, iou=0.6, gt=2, matched=2, ms=50.0),
        outcome("absent", present=False, score=0.6, iou=0.0, found=True, ms=60.0),
        outcome("absent", present=False, score=0.1, iou=0.0, found=False, ms=70.0),
        outcome("absent_shape_lookalike", present=False, score=0.0, iou=0.0, found=False),
    ]
    s = summarise_real("m", outcomes, threshold=0.5)
    assert s.success_rate == pytest.approx(3 / 5)
    assert s.mean_iou == pytest.approx((0.8 + 0.3 + 0.0 + 0.7 + 0.6) / 5)
    assert s.instance_recall == pytest.approx(4 / 5)
    assert s.fp_rate == pytest.approx(1 / 3)
    assert s.success_by_category == {"two_view": 0.5, "blur": 0.0, "several": 1.0}
    assert list(s.success_by_category) == ["two_view", "blur", "several"]  # canonical order
    assert s.fp_by_category == {"absent": 0.5, "absent_shape_lookalike": 0.0}
    # Present scores 0.9, 0.7, 0.2, 0.95, 0.85 against absent 0.6, 0.1, 0.0: only 0.2 loses
    # to 0.6.
    assert s.auroc == pytest.approx(14 / 15)
    labels = [1, 0, 1, 1, 1, 0, 0, 0]
    scores = [o.top_score for o in outcomes]
    assert s.ece == pytest.approx(expected_calibration_error(scores, labels))
    assert s.latency_ms == pytest.approx(35.0)
    assert s.mask_iou is None and (s.num_present, s.num_absent) == (5, 3)
    row = s.to_dict()
    assert row["fp_rate_by_category"] == {"absent": 0.5, "absent_shape_lookalike": 0.0}
    assert len(row["reliability"]) == 10 and sum(b["count"] for b in row["reliability"]) == 8


def test_summary_without_absent_or_several_trials():
    s = summarise_real("m", [outcome("jpeg")], threshold=0.5)
    assert (s.fp_rate, s.auroc, s.instance_recall) == (None, None, None)
    assert s.success_rate == 1.0 and s.ece == pytest.approx(0.1)


def test_markdown_tables():
    a = summarise_real(
        "a",
        [outcome("blur"), outcome("absent", present=False, score=0.1, found=False)],
        threshold=0.5,
    )
    b = RealSummary("b", 0.3, None, None, None, None, None, None, None, 2.0, 0, 0)
    text = markdown_real([a, b])
    lines = text.splitlines()
    assert lines[2].startswith("| a | 0.500 | 1.000 | 1.000 | – | 0.000 | 1.000 |")
    assert lines[3] == "| b | 0.300 | – | – | – | – | – | – | 2.0 |"
    assert "| matcher | blur |" in text and "| b | – |" in text
    assert "| matcher | absent |" in text


# -- the document -------------------------------------------------------------------------


def test_trials_of_a_split(tiny_set):
    document = protocol.load_real_document(tiny_set)
    test = protocol.real_trials(document, "test")
    assert [t.id for t in test] == [1, 2, 3, 4, 5, 6, 7]
    several = test[2]
    assert several.category == "several" and several.present
    np.testing.assert_array_equal(several.gt_boxes, [b for _, b in SCENES[2]])
    assert len(several.gt_masks) == 2
    assert test[1].reference_box == (40.0, 40.0, 140.0, 140.0) and test[0].reference_box is None
    assert not test[4].present and test[4].gt_boxes.shape == (0, 4) and test[4].gt_masks is None
    assert [t.id for t in protocol.real_trials(document, "val")] == [8]
    assert [t.id for t in protocol.real_trials(document, "train")] == [9]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["trials"][0].update(split="val"), None),  # still fine
        (lambda d: d["trials"][0].update(boxes=[]), "needs boxes"),
        (lambda d: d["trials"][4].update(boxes=[[0, 0, 5, 5]]), "needs boxes"),
        (lambda d: d["trials"][0].update(boxes=[[10, 10, 5, 20]]), "empty"),
        (lambda d: d["trials"][0].update(reference_id=99), "unknown"),
        (lambda d: d["trials"][0].update(masks=[]), "masks"),
        (lambda d: [t.update(split="val") for t in d["trials"]], "no trial in split 'test'"),
    ],
)
def test_malformed_trials_are_refused(tiny_set, edit, message):
    document = copy.deepcopy(protocol.load_real_document(tiny_set))
    edit(document)
    if message is None:
        protocol.real_trials(document, "test")
        return
    with pytest.raises(matcher.InvalidArgumentError, match=message):
        protocol.real_trials(document, "test")


def test_unreadable_documents_and_missing_files(tiny_set, tmp_path):
    with pytest.raises(matcher.InvalidArgumentError, match="cannot read"):
        protocol.load_real_document(tmp_path)
    (tmp_path / "annotations.json").write_text(json.dumps({"images": [], "trials": []}))
    with pytest.raises(matcher.InvalidArgumentError, match="references"):
        protocol.load_real_document(tmp_path)
    trials = protocol.real_trials(protocol.load_real_document(tiny_set), "test")
    with pytest.raises(matcher.InvalidArgumentError, match="scene"):
        protocol.load_references(trials, tmp_path)
    (tmp_path / "scenes").symlink_to(tiny_set / "scenes")
    with pytest.raises(matcher.InvalidArgumentError, match="reference"):
        protocol.load_references(trials, tmp_path)
    references = protocol.load_references(trials, tiny_set)
    assert sorted(references) == [1, 2, 3, 4]
    assert references[2].box == (40.0, 40.0, 140.0, 140.0)


# -- running ------------------------------------------------------------------------------


def test_mask_iou_of_the_top_instance():
    t = trial(GT, masks=tuple(encode_rle(box_mask(tuple(b))) for b in GT))
    mask = box_mask((20, 20, 30, 25))
    result = MatchResult(
        instances=(Instance(box=(20.0, 20.0, 30.0, 25.0), score=0.8, mask=mask),),
        scene_size=(240, 320),
    )
    a = protocol.answer_from_result(t, result, latency_ms=2.0)
    assert a.top_mask_iou == pytest.approx(0.5)
    assert a.scores.tolist() == [0.8] and a.boxes.shape == (1, 4)


def test_end_to_end_with_the_template_baseline(tiny_set):
    m = matcher.load("baseline_template")
    threshold = m.params.score_threshold
    document = protocol.load_real_document(tiny_set)
    trials = protocol.real_trials(document, "test")
    references = protocol.load_references(trials, tiny_set)
    answers = protocol.run_real_trials(m, trials, references, root=tiny_set)
    assert [a.trial_id for a in answers] == [t.id for t in trials]
    assert all(len(a.scores) <= protocol.MAX_INSTANCES for a in answers)
    # Threshold 0: absent trials still return their best (low) candidates.
    assert all(len(a.scores) for a in answers)
    outcomes = [
        protocol.score_answer(t, a, threshold=threshold)
        for t, a in zip(trials, answers, strict=True)
    ]
    s = summarise_real(m.name, outcomes, threshold=threshold)
    # The products are pasted unchanged: every exact copy is found, both rockets too.
    assert s.success_rate == 1.0 and s.mean_iou > 0.8
    assert s.instance_recall == 1.0
    assert set(s.success_by_category) == {"two_view", "jpeg", "several"}
    assert set(s.fp_by_category) == {"absent", "absent_colour_lookalike", "absent_shape_lookalike"}
    assert s.auroc == 1.0  # every present top score beats every absent one
    assert 0.0 <= s.ece <= 1.0 and s.latency_ms > 0
    records = [o.to_record() for o in outcomes]
    assert [r["trial_id"] for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert set(records[0]) == {"trial_id", "category", "present", "top_score", "iou", "found"}


def test_reliability_diagram_draws_each_curve():
    good = reliability_bins([0.25] * 4 + [0.75] * 4, [1, 0, 0, 0, 1, 1, 1, 0])
    bad = reliability_bins([0.9] * 10, [1] * 6 + [0] * 4)
    picture = draw_reliability_diagram([("good", good), ("bad", bad)])
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    for colour in PALETTE[:2]:
        assert np.any(np.all(picture == colour, axis=2))
    assert not np.any(np.all(picture == PALETTE[2], axis=2))
    with pytest.raises(ValueError):
        draw_reliability_diagram([])
    with pytest.raises(ValueError):
        draw_reliability_diagram([("a", good), ("b", reliability_bins([0.5], [1], num_bins=5))])
