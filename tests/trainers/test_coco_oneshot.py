"""The one-shot COCO evaluation: splits, the seeded reference draw, scoring against
pycocotools computed directly, the absent pass, detections files and the matcher path."""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from matcher.errors import ConfigError, InvalidArgumentError
from matcher.images import load_image
from matcher.masks import decode_rle
from matcher.structures import Instance, MatchResult
from tests.trainers.coco_oneshot_helpers import (
    LAYOUT,
    QUERIED_IMAGES,
    SKIPPED,
    SPLIT,
    ground_truth,
    make_dataset,
    perfect_records,
    rect_rle,
)
from trainers.evaluate.coco_oneshot import (
    detections_from_records,
    evaluate,
    run_matcher,
)
from trainers.evaluate.oneshot_data import load_dataset
from trainers.evaluate.oneshot_queries import ReferenceRule, draw_queries
from trainers.evaluate.oneshot_report import to_markdown
from trainers.evaluate.oneshot_splits import coco_split, load_split_file, split_from_dict

# The 80 MS-COCO category ids (1..90 without the 10 unused ones).
COCO_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]
# Unseen categories of the four splits, as listed in the protocol's reference table.
PROTOCOL_UNSEEN = {
    1: [1, 5, 9, 14, 18, 22, 27, 33, 37, 41, 46, 50, 54, 58, 62, 67, 74, 78, 82, 87],
    2: [2, 6, 10, 15, 19, 23, 28, 34, 38, 42, 47, 51, 55, 59, 63, 70, 75, 79, 84, 88],
    3: [3, 7, 11, 16, 20, 24, 31, 35, 39, 43, 48, 52, 56, 60, 64, 72, 76, 80, 85, 89],
    4: [4, 8, 13, 17, 21, 25, 32, 36, 40, 44, 49, 53, 57, 61, 65, 73, 77, 81, 86, 90],
}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> SimpleNamespace:
    paths = make_dataset(tmp_path_factory.mktemp("oneshot"))
    dataset = load_dataset(paths["ann"])
    split = load_split_file(paths["split"], dataset.categories)
    return SimpleNamespace(paths=paths, dataset=dataset, split=split)


def _plan(small, *, runs: int = 3, seed: int = 0, **kwargs):
    return draw_queries(small.dataset, small.split, runs=runs, seed=seed, **kwargs)


def _queries(plan, small) -> list[dict]:
    return plan.to_dict(small.dataset)["queries"]


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


# -- splits -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_coco_splits_match_the_protocol_table(k):
    split = coco_split(k, reversed(COCO_IDS))
    assert list(split.unseen) == PROTOCOL_UNSEEN[k]
    assert len(split.seen) == 60 and not set(split.seen) & set(split.unseen)
    assert sorted(split.seen + split.unseen) == COCO_IDS


def test_coco_splits_partition_the_categories():
    unseen = [set(coco_split(k, COCO_IDS).unseen) for k in (1, 2, 3, 4)]
    assert set().union(*unseen) == set(COCO_IDS)
    assert sum(len(u) for u in unseen) == 80


def test_coco_split_refuses_other_datasets():
    with pytest.raises(InvalidArgumentError, match="split-file"):
        coco_split(1, range(1, 7))
    with pytest.raises(InvalidArgumentError):
        coco_split(5, COCO_IDS)


def test_split_file_rules():
    ids = range(1, 7)
    assert split_from_dict({"unseen": [2, 1]}, ids, name="s").seen == (3, 4, 5, 6)
    assert split_from_dict({"unseen": [1], "seen": [3]}, ids, name="s").seen == (3,)
    for bad, match in [
        ({"unseen": [1, 9]}, "category 9"),
        ({"unseen": [1], "seen": [1, 2]}, "both unseen and seen"),
        ({"unseen": [1, 1]}, "twice"),
        ({"seen": [1]}, "missing"),
        ({"unseen": []}, "empty"),
        ({"unseen": ["1"]}, "not an integer"),
        ({"unseen": [1], "other": []}, "unknown key"),
        ([1, 2], "expected an object"),
    ]:
        with pytest.raises(ConfigError, match=match):
            split_from_dict(bad, ids, name="s")


def test_split_file_missing_or_not_json(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_split_file(tmp_path / "nope.json", [1])
    bad = tmp_path / "bad.json"
    bad.write_text("{unseen")
    with pytest.raises(InvalidArgumentError, match="not readable JSON"):
        load_split_file(bad, [1])


# -- dataset ----------------------------------------------------------------------------


def test_dataset_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_dataset(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"id": 1}], "categories": []}))
    with pytest.raises(InvalidArgumentError, match=r"annotations\[0\] lacks"):
        load_dataset(bad)
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(InvalidArgumentError, match="'annotations' list is missing"):
        load_dataset(bad)


def test_dataset_index(small):
    ds = small.dataset
    assert ds.present[4] == {2}  # category 3 is only a crowd region there
    assert ds.annotated[4] == {2, 3}
    assert ds.present[7] == frozenset() and ds.has_masks


# -- the draw ---------------------------------------------------------------------------


def test_draw_follows_the_reference_rule(small):
    plan = _plan(small, runs=3)
    anns = small.dataset.coco.anns
    assert {g: list(p) for g, p in plan.skipped.items()} == SKIPPED
    for q in plan.queries:
        ann = anns[q.reference.annotation_id]
        assert ann["category_id"] == q.category_id and ann["image_id"] == q.reference.image_id
        assert not ann["iscrowd"] and min(ann["bbox"][2:]) >= 16
        assert q.reference.image_id != q.image_id
        if q.absent:
            assert q.category_id not in small.dataset.annotated[q.image_id]
        else:
            assert q.category_id in small.dataset.present[q.image_id]
    for run in range(3):
        present = {
            (q.image_id, q.category_id) for q in plan.queries if q.run == run and not q.absent
        }
        expected = {
            (i, c)
            for i, insts in LAYOUT.items()
            for c, _, crowd in insts
            if not crowd and (i, c) not in SKIPPED["unseen"] + SKIPPED["seen"]
        }
        assert present == expected
        for group in ("unseen", "seen"):
            images = sorted({i for i, c in present if c in SPLIT[group]})
            assert images == QUERIED_IMAGES[group]
            absent = [q for q in plan.queries if q.run == run and q.absent and q.group == group]
            # one absent query per image that has an absent category of the group
            assert len({q.image_id for q in absent}) == len(absent)


def test_draw_is_reproducible_and_depends_on_the_seed(small):
    def refs(plan):
        return [(q.key, q.absent, q.reference.annotation_id) for q in plan.queries]

    assert refs(_plan(small, seed=7)) == refs(_plan(small, seed=7))
    assert refs(_plan(small, seed=7)) != refs(_plan(small, seed=8))
    runs = _plan(small, runs=4, seed=7)
    by_run = [[r for k, _, r in refs(runs) if k[0] == run] for run in range(4)]
    assert len({tuple(r) for r in by_run}) > 1  # runs draw different references
    # a draw does not depend on which other images are evaluated
    subset = _plan(small, seed=7, image_ids=[6, 2])
    assert set(refs(subset)) == {r for r in refs(_plan(small, seed=7)) if r[0][1] in (2, 6)}


def test_draw_matches_the_documented_formula(small):
    """Brute force: the category's eligible instances outside the image, by annotation id,
    indexed by ``default_rng([seed, run, image_id, 0, category_id]).integers(n)``."""
    anns = sorted(small.dataset.coco.dataset["annotations"], key=lambda a: a["id"])
    plan = _plan(small, runs=4, seed=9)
    present = [q for q in plan.queries if not q.absent]
    assert len(present) == 4 * 10  # 10 present pairs with a reference, 4 runs
    for q in present:
        pool = [
            a["id"]
            for a in anns
            if a["category_id"] == q.category_id
            and not a["iscrowd"]
            and min(a["bbox"][2:]) >= 16
            and a["image_id"] != q.image_id
        ]
        index = np.random.default_rng([9, q.run, q.image_id, 0, q.category_id]).integers(len(pool))
        assert q.reference.annotation_id == pool[index]


def test_draw_argument_checks(small):
    with pytest.raises(InvalidArgumentError, match="runs"):
        _plan(small, runs=0)
    with pytest.raises(InvalidArgumentError, match="seed"):
        _plan(small, seed=-1)
    with pytest.raises(InvalidArgumentError, match="groups"):
        _plan(small, groups=("unknown",))
    with pytest.raises(InvalidArgumentError, match="image ids"):
        _plan(small, image_ids=[99])


def test_min_size_rule_changes_the_pools(small):
    plan = _plan(small, rule=ReferenceRule(min_size=8))
    assert plan.skipped["seen"] == ()  # the 10-px instance of category 4 now qualifies


# -- scoring ----------------------------------------------------------------------------


def test_perfect_detections_score_one(small):
    plan = _plan(small)
    dets = detections_from_records(perfect_records(_queries(plan, small)), small.dataset, plan)
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
    plan = _plan(small, runs=2)
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
    for q in _queries(plan, small):
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
    plan = _plan(small, runs=3, seed=4)
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
    plan = _plan(small, runs=2)
    queries = _queries(plan, small)
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
    plan = _plan(small, absent_per_image=0)
    assert not any(q.absent for q in plan.queries)
    report = evaluate(
        small.dataset, plan, detections_from_records([], small.dataset, plan), threshold=0.5
    )
    assert report["groups"]["unseen"]["absent"] is None


def test_unqueried_detections_are_ignored(small):
    plan = _plan(small, runs=1)
    records = perfect_records(_queries(plan, small))
    extra = {**records[0], "image_id": 4, "category_id": 3, "segmentation": rect_rle((1, 1, 9, 9))}
    dets = detections_from_records([*records, extra], small.dataset, plan)
    assert dets.num_ignored == 1
    report = evaluate(small.dataset, plan, dets, threshold=0.5)
    assert report["ignored_detections"] == 1
    assert report["groups"]["seen"]["bbox"]["AP50"]["mean"] == pytest.approx(1.0)


def test_box_only_detections_skip_segm(small):
    plan = _plan(small, runs=1)
    records = perfect_records(_queries(plan, small), masks=False)
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
    plan = _plan(small, runs=2)
    with pytest.raises(InvalidArgumentError, match=match):
        detections_from_records(records, small.dataset, plan)


# -- the matcher path -------------------------------------------------------------------


class OracleMatcher:
    """Finds a reference's category in a scene from the annotations, plus one weak false
    positive; counts how often each scene is searched."""

    def __init__(self, small, *, masks: bool = True) -> None:
        self.small, self.masks = small, masks
        self.scenes: dict[bytes, int] = {}
        for image_id in LAYOUT:
            path = small.paths["images"] / small.dataset.images[image_id]["file_name"]
            self.scenes[load_image(path).tobytes()] = image_id
        self.calls: list[tuple[int, int]] = []

    def _result(self, reference, image_id: int) -> MatchResult:
        ann = self.small.dataset.coco.anns[int(reference.id.split("-")[1])]
        instances = []
        for x, y, w, h in ground_truth(image_id, ann["category_id"]):
            mask = decode_rle(rect_rle((x, y, w, h))) if self.masks else None
            instances.append(Instance(box=(x, y, x + w, y + h), score=0.9, mask=mask))
        mask = decode_rle(rect_rle((70, 0, 10, 10))) if self.masks else None
        instances.append(Instance(box=(70.0, 0.0, 80.0, 10.0), score=0.3, mask=mask))
        return MatchResult(instances=tuple(instances), scene_size=(64, 80))

    def match(self, reference, scene, *, max_instances, score_threshold):
        return self.match_many(
            [reference], scene, max_instances=max_instances, score_threshold=score_threshold
        )[0]

    def match_many(self, references, scene, *, max_instances, score_threshold):
        image_id = self.scenes[scene.tobytes()]
        self.calls.append((image_id, len(references)))
        return [self._result(r, image_id) for r in references]


@pytest.mark.parametrize("masks", [True, False])
def test_run_matcher_scores_an_oracle_perfectly(small, masks):
    plan = _plan(small, runs=2)
    oracle = OracleMatcher(small, masks=masks)
    dets = run_matcher(
        oracle, small.dataset, plan, images_dir=small.paths["images"], progress=False
    )
    # one call per scene, with every query of that scene (all runs, present and absent)
    by_image = plan.by_image()
    assert sorted(oracle.calls) == sorted((i, len(q)) for i, q in by_image.items())
    assert dets.has_masks is masks
    report = evaluate(small.dataset, plan, dets, threshold=0.5)
    assert report["segm_evaluated"] is masks
    for group in ("unseen", "seen"):
        g = report["groups"][group]
        assert g["bbox"]["AP50"]["runs"] == pytest.approx([1.0, 1.0])
        if masks:
            assert g["segm"]["AP"]["mean"] == pytest.approx(1.0)
        assert g["operating_point"]["precision50"]["mean"] == 1.0  # the 0.3 FP is below
        assert g["absent"]["fp_per_image"]["mean"] == 0.0


TINY_RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs" / "tiny").glob("[!_]*.yaml"))


class CallCounter:
    """Forwards ``match``/``match_many`` to a matcher and records the references per call."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, []

    def match(self, reference, scene, **kwargs):
        self.calls.append(1)
        return self.inner.match(reference, scene, **kwargs)

    def match_many(self, references, scene, **kwargs):
        self.calls.append(len(references))
        return self.inner.match_many(references, scene, **kwargs)


@pytest.mark.parametrize("recipe", TINY_RECIPES, ids=lambda p: p.stem)
def test_every_family_runs_through_the_same_path(small, recipe):
    """Each registered family's tiny recipe (untrained) goes through ``run_matcher``: one
    call per scene, scores in range, masks exactly when the family returns them."""
    import matcher

    plan = _plan(small, runs=1, image_ids=[2], groups=("unseen",))
    assert len(plan.queries) == 3  # categories 1 and 2, plus one absent category
    spy = CallCounter(matcher.build(recipe))
    dets = run_matcher(
        spy,
        small.dataset,
        plan,
        images_dir=small.paths["images"],
        max_instances=3,
        score_threshold=0.0,
        progress=False,
    )
    assert spy.calls == [3]
    for det in dets.by_query.values():
        assert 0 < len(det.scores) <= 3 and np.all((det.scores >= 0) & (det.scores <= 1))
        assert (det.masks is not None) is dets.has_masks
    report = evaluate(small.dataset, plan, dets, threshold=0.5)
    assert 0.0 <= report["groups"]["unseen"]["bbox"]["AP50"]["mean"] <= 1.0
    assert report["segm_evaluated"] is (dets.has_masks or not dets.by_query)


def test_run_matcher_refuses_missing_images(small, tmp_path):
    plan = _plan(small, runs=1)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        run_matcher(OracleMatcher(small), small.dataset, plan, images_dir=tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="missing"):
        run_matcher(OracleMatcher(small), small.dataset, plan, images_dir=tmp_path / "empty")


def test_exported_detections_round_trip(small, tmp_path):
    plan = _plan(small, runs=2)
    dets = run_matcher(
        OracleMatcher(small),
        small.dataset,
        plan,
        images_dir=small.paths["images"],
        progress=False,
    )
    dets.write(tmp_path / "dets.json")
    records = json.loads((tmp_path / "dets.json").read_text())
    assert {r["run"] for r in records} == {0, 1} and all("segmentation" in r for r in records)
    again = detections_from_records(records, small.dataset, plan)
    first = evaluate(small.dataset, plan, dets, threshold=0.5)
    second = evaluate(small.dataset, plan, again, threshold=0.5)
    assert first["groups"] == second["groups"]
