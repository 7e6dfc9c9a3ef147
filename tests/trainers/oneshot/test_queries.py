"""The one-shot COCO evaluation: class splits, the annotation file and the seeded reference
draw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.errors import ConfigError, InvalidArgumentError
from tests.trainers.oneshot.helpers import LAYOUT, QUERIED_IMAGES, SKIPPED, SPLIT, draw_plan
from trainers.evaluate.oneshot.data import load_dataset
from trainers.evaluate.oneshot.queries import ReferenceRule
from trainers.evaluate.oneshot.splits import coco_split, load_split_file, split_from_dict

# The 80 MS-COCO category ids (1..90 without the 10 unused ones).
COCO_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]
# Unseen categories of the four splits, as listed in the protocol's reference table.
PROTOCOL_UNSEEN = {
    1: [1, 5, 9, 14, 18, 22, 27, 33, 37, 41, 46, 50, 54, 58, 62, 67, 74, 78, 82, 87],
    2: [2, 6, 10, 15, 19, 23, 28, 34, 38, 42, 47, 51, 55, 59, 63, 70, 75, 79, 84, 88],
    3: [3, 7, 11, 16, 20, 24, 31, 35, 39, 43, 48, 52, 56, 60, 64, 72, 76, 80, 85, 89],
    4: [4, 8, 13, 17, 21, 25, 32, 36, 40, 44, 49, 53, 57, 61, 65, 73, 77, 81, 86, 90],
}


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
    plan = draw_plan(small, runs=3)
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

    assert refs(draw_plan(small, seed=7)) == refs(draw_plan(small, seed=7))
    assert refs(draw_plan(small, seed=7)) != refs(draw_plan(small, seed=8))
    runs = draw_plan(small, runs=4, seed=7)
    by_run = [[r for k, _, r in refs(runs) if k[0] == run] for run in range(4)]
    assert len({tuple(r) for r in by_run}) > 1  # runs draw different references
    # a draw does not depend on which other images are evaluated
    subset = draw_plan(small, seed=7, image_ids=[6, 2])
    assert set(refs(subset)) == {r for r in refs(draw_plan(small, seed=7)) if r[0][1] in (2, 6)}


def test_draw_matches_the_documented_formula(small):
    """Brute force: the category's eligible instances outside the image, by annotation id,
    indexed by ``default_rng([seed, run, image_id, 0, category_id]).integers(n)``."""
    anns = sorted(small.dataset.coco.dataset["annotations"], key=lambda a: a["id"])
    plan = draw_plan(small, runs=4, seed=9)
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
        draw_plan(small, runs=0)
    with pytest.raises(InvalidArgumentError, match="seed"):
        draw_plan(small, seed=-1)
    with pytest.raises(InvalidArgumentError, match="groups"):
        draw_plan(small, groups=("unknown",))
    with pytest.raises(InvalidArgumentError, match="image ids"):
        draw_plan(small, image_ids=[99])


def test_min_size_rule_changes_the_pools(small):
    plan = draw_plan(small, rule=ReferenceRule(min_size=8))
    assert plan.skipped["seen"] == ()  # the 10-px instance of category 4 now qualifies
