"""The one-shot COCO evaluation through a matcher: one call per scene, an oracle scored
perfectly, every registered family on the same path, and exported detections read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from matcher.errors import InvalidArgumentError
from matcher.images import load_image
from matcher.mask_codec import decode_rle
from matcher.structures import Instance, MatchResult
from tests.trainers.oneshot.helpers import LAYOUT, draw_plan, ground_truth, rect_rle
from trainers.evaluate.oneshot.detections import detections_from_records
from trainers.evaluate.oneshot.protocol import evaluate, run_matcher

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
    plan = draw_plan(small, runs=2)
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


TINY_RECIPES = sorted((Path(__file__).resolve().parents[3] / "configs" / "tiny").glob("[!_]*.yaml"))


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

    plan = draw_plan(small, runs=1, image_ids=[2], groups=("unseen",))
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
    plan = draw_plan(small, runs=1)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        run_matcher(OracleMatcher(small), small.dataset, plan, images_dir=tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="missing"):
        run_matcher(OracleMatcher(small), small.dataset, plan, images_dir=tmp_path / "empty")


def test_exported_detections_round_trip(small, tmp_path):
    plan = draw_plan(small, runs=2)
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
