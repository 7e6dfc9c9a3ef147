"""The one-shot COCO evaluation: scoring against pycocotools computed directly, the absent
pass, the report's Markdown and detections files."""

from __future__ import annotations

import copy
import io
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from matcher.errors import InvalidArgumentError
from tests.trainers.oneshot.helpers import (
    QUERIED_IMAGES,
    SPLIT,
    draw_plan,
    exported_queries,
    ground_truth,
    perfect_records,
    rect_rle,
)
from trainers.evaluate.oneshot.detections import detections_from_records
from trainers.evaluate.oneshot.protocol import evaluate
from trainers.evaluate.oneshot.report import to_markdown


def _direct_stats(ann: Path, records: list[dict], *, iou_type: str, cats, images) -> np.ndarray:
    """pycocotools' own ``summarize()`` on the given results, restricted like the protocol."""
    with redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        dt = gt.loadRes([dict(r) for r in records])
        ev = COCOeval(gt, dt, iou_type)
        ev.params.catIds = list(cats)
        ev.params.imgIds = list(images)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


# -- scoring ----------------------------------------------------------------------------


def test_perfect_detections_score_one(small):
    plan = draw_plan(small)
    dets = detections_from_records(
        perfect_records(exported_queries(plan, small)), small.dataset, plan
    )
    report = evaluate(small.dataset, plan, dets, threshold=0.5)
    assert report["segm_evaluated"]
    for group in ("unseen", "seen"):
        g = report["groups"][group]
        assert g["num_skipped_pairs"] == 1
        for iou_type in ("bbox", "segm"):
            assert g[iou_type]["AP50"]["runs"] == pytest.approx([1.0, 1.0, 1.0])
            assert g[iou_type]["AP"]["mean"] == pytest.approx(1.0)
            assert g[iou_type]["AP50"]["std"] == pytest.approx(0.0)
        assert g["operating_point"]["recall50"]["mean"] == 1.0
        assert g["operating_point"]["precision50"]["mean"] == 1.0
        assert g["absent"]["fp_per_image"]["mean"] == 0.0
        rows = {r["id"]: r for r in g["per_category"]}
        for cat in SPLIT[group]:  # category 5's only pair is skipped: no AP
            assert rows[cat]["bbox_AP50"] == (None if cat == 5 else pytest.approx(1.0))


def test_no_detections_score_zero(small):
    plan = draw_plan(small, runs=2)
    dets = detections_from_records([], small.dataset, plan)
    report = evaluate(small.dataset, plan, dets, threshold=0.5)
    for group in ("unseen", "seen"):
        g = report["groups"][group]
        for iou_type in ("bbox", "segm"):
            assert g[iou_type]["AP50"]["runs"] == [0.0, 0.0]
            assert g[iou_type]["AP"]["mean"] == 0.0
        assert g["operating_point"]["recall50"]["mean"] == 0.0
        assert g["absent"]["false_alarm_rate"]["mean"] == 0.0


def _noisy_records(plan, small, seed: int) -> list[dict]:
    """Jittered, partly missed true boxes and random false positives with random scores."""
    rng = np.random.default_rng(seed)
    out = []
    for q in exported_queries(plan, small):
        boxes = [] if q["absent"] else ground_truth(q["image_id"], q["category_id"])
        found = [b for b in boxes if rng.random() < 0.75]
        found = [[v + rng.uniform(-4, 4) for v in b[:2]] + list(b[2:]) for b in found]
        for _ in range(rng.integers(0, 3)):
            w, h = rng.uniform(8, 30, 2)
            found.append([rng.uniform(0, 80 - w), rng.uniform(0, 64 - h), w, h])
        for box in found:
            out.append(
                {
                    "image_id": q["image_id"],
                    "category_id": q["category_id"],
                    "bbox": [float(v) for v in box],
                    "score": float(rng.uniform(0.05, 1.0)),
                    "segmentation": rect_rle(box),
                    "run": q["run"],
                }
            )
    return out


def test_partial_detections_equal_pycocotools(small):
    plan = draw_plan(small, runs=3, seed=4)
    records = _noisy_records(plan, small, seed=11)
    before = copy.deepcopy(records)
    report = evaluate(
        small.dataset, plan, detections_from_records(records, small.dataset, plan), threshold=0.5
    )
    checked = partial_ap50 = 0
    for group in ("unseen", "seen"):
        g = report["groups"][group]
        for run in range(3):
            present = {
                (q.image_id, q.category_id)
                for q in plan.queries
                if q.run == run and not q.absent and q.group == group
            }
            run_records = [
                r
                for r in records
                if r["run"] == run and (r["image_id"], r["category_id"]) in present
            ]
            for iou_type in ("bbox", "segm"):
                stats = _direct_stats(
                    small.paths["ann"],
                    run_records,
                    iou_type=iou_type,
                    cats=SPLIT[group],
                    images=QUERIED_IMAGES[group],
                )
                assert g[iou_type]["AP50"]["runs"][run] == pytest.approx(stats[1], abs=1e-12)
                assert g[iou_type]["AP"]["runs"][run] == pytest.approx(stats[0], abs=1e-12)
                assert 0.0 < stats[0] < 0.99  # a genuinely partial case
                partial_ap50 += stats[1] < 0.99
                checked += 1
        # per-category AP50 equals pycocotools restricted to that category
        for row in g["per_category"]:
            if row["bbox_AP50"] is None:
                continue
            values = []
            for run in range(3):
                present = {
                    (q.image_id, q.category_id)
                    for q in plan.queries
                    if q.run == run and not q.absent and q.group == group
                }
                run_records = [
                    r
                    for r in records
                    if r["run"] == run and (r["image_id"], r["category_id"]) in present
                ]
                stats = _direct_stats(
                    small.paths["ann"],
                    run_records,
                    iou_type="bbox",
                    cats=[row["id"]],
                    images=QUERIED_IMAGES[group],
                )
                values.append(stats[1])
            assert row["bbox_AP50"] == pytest.approx(np.mean(values), abs=1e-12)
    assert checked == 12 and partial_ap50 >= 6
    assert records == before  # scoring leaves the caller's records unchanged
    g = report["groups"]["unseen"]
    assert g["bbox"]["AP50"]["mean"] == pytest.approx(np.mean(g["bbox"]["AP50"]["runs"]))
    assert g["bbox"]["AP50"]["std"] == pytest.approx(np.std(g["bbox"]["AP50"]["runs"], ddof=1))


def test_absent_pass_counts_false_positives_at_the_threshold(small):
    plan = draw_plan(small, runs=2)
    queries = exported_queries(plan, small)
    records = perfect_records(queries)
    scores = [0.95, 0.7, 0.3]  # two at or above the 0.5 threshold, one below
    for q in queries:
        if q["absent"]:
            for s in scores:
                records.append(
                    {
                        "image_id": q["image_id"],
                        "category_id": q["category_id"],
                        "bbox": [1.0, 1.0, 20.0, 20.0],
                        "score": s,
                        "segmentation": rect_rle((1, 1, 20, 20)),
                        "run": q["run"],
                    }
                )
    report = evaluate(
        small.dataset, plan, detections_from_records(records, small.dataset, plan), threshold=0.5
    )
    for group in ("unseen", "seen"):
        g = report["groups"][group]
        absent = [q for q in queries if q["absent"] and q["group"] == group and q["run"] == 0]
        assert g["absent"]["num_references"] == len(absent) > 0
        assert g["absent"]["fp_per_image"]["runs"] == [2.0, 2.0]
        assert g["absent"]["false_alarm_rate"]["mean"] == 1.0
        assert g["bbox"]["AP50"]["mean"] == pytest.approx(1.0)  # absent queries never enter AP
    strict = evaluate(
        small.dataset, plan, detections_from_records(records, small.dataset, plan), threshold=0.8
    )
    assert strict["groups"]["seen"]["absent"]["fp_per_reference"]["mean"] == 1.0


def test_absent_pass_can_be_disabled(small):
    plan = draw_plan(small, absent_per_image=0)
    assert not any(q.absent for q in plan.queries)
    report = evaluate(
        small.dataset, plan, detections_from_records([], small.dataset, plan), threshold=0.5
    )
    assert report["groups"]["unseen"]["absent"] is None


def test_unqueried_detections_are_ignored(small):
    plan = draw_plan(small, runs=1)
    records = perfect_records(exported_queries(plan, small))
    extra = {**records[0], "image_id": 4, "category_id": 3, "segmentation": rect_rle((1, 1, 9, 9))}
    dets = detections_from_records([*records, extra], small.dataset, plan)
    assert dets.num_ignored == 1
    report = evaluate(small.dataset, plan, dets, threshold=0.5)
    assert report["ignored_detections"] == 1
    assert report["groups"]["seen"]["bbox"]["AP50"]["mean"] == pytest.approx(1.0)


def test_box_only_detections_skip_segm(small):
    plan = draw_plan(small, runs=1)
    records = perfect_records(exported_queries(plan, small), masks=False)
    report = evaluate(
        small.dataset, plan, detections_from_records(records, small.dataset, plan), threshold=0.5
    )
    assert not report["segm_evaluated"]
    assert report["groups"]["unseen"]["segm"] is None
    assert report["groups"]["unseen"]["bbox"]["AP50"]["mean"] == pytest.approx(1.0)
    table = to_markdown(report)
    assert "| unseen | 3 |" in table and "| seen | 4 | product 4 |" in table


def _record(**changes) -> dict:
    rec = {"image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 24], "score": 0.9, "run": 0}
    rec.update(changes)
    return {k: v for k, v in rec.items() if v is not ...}


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ({"image_id": 1}, "expected a JSON list"),
        ([_record(score=...)], "lacks score"),
        ([_record(image_id=99)], "unknown image_id 99"),
        ([_record(category_id=42)], "unknown category_id 42"),
        ([_record(bbox=[1, 2, 3])], "bbox"),
        ([_record(bbox=[1, 2, -3, 4])], "bbox"),
        ([_record(score=float("nan"))], "score"),
        ([_record(run=5)], "run 5"),
        ([_record(run=-1)], "run must be"),
        ([_record(image_id="1")], "image_id must be an integer"),
        ([_record(segmentation={"size": [10, 10], "counts": "00"})], "segmentation"),
        ([_record(segmentation=[[1, 2, 3, 4, 5, 6]])], "segmentation"),
        ([_record(segmentation={"size": [64, 80], "counts": "a b~"})], "segmentation"),
        ([_record(segmentation=rect_rle((4, 4, 20, 24))), _record(score=0.5)], "every record"),
        (["not a dict"], "record 0 is not an object"),
    ],
)
def test_malformed_detections_are_refused(small, records, match):
    plan = draw_plan(small, runs=2)
    with pytest.raises(InvalidArgumentError, match=match):
        detections_from_records(records, small.dataset, plan)
