"""MS-COCO one-shot evaluation (the Siamese Mask R-CNN protocol) for every matcher.

Flow: :func:`~trainers.evaluate.oneshot.data.load_dataset` -> a class split
(:mod:`~trainers.evaluate.oneshot.splits`) ->
:func:`~trainers.evaluate.oneshot.queries.draw_queries` -> detections, either from a
matcher (:func:`run_matcher`) or from a file
(:func:`~trainers.evaluate.oneshot.detections.read_detections`) ->
:func:`evaluate`, which scores each run and group with pycocotools
(:mod:`~trainers.evaluate.oneshot.scoring`) and builds the report
(:mod:`~trainers.evaluate.oneshot.report`).

**Matchers.** Anything with ``match(reference, scene, *, max_instances, score_threshold)``
returning a :class:`matcher.MatchResult` works: the Siamese trackers in match mode and the
multi-instance models alike. All queries of one scene (every run, category and the absent
pass) go through ``match_many`` together (at most 64 references a call), so the scene is
encoded once. The reference is
``Reference.from_image(reference_image, box=instance box)``: the whole image and the box,
cropped by the matcher's own template rule.

**Detections files** (``--detections``) are COCO results with an optional ``run`` field;
``category_id`` is the reference's category, and ``(run, image_id, category_id)`` names the
query whose reference the seeded draw gives (format in
:mod:`~trainers.evaluate.oneshot.detections`).
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from matcher.errors import InvalidArgumentError
from trainers.evaluate.oneshot.data import OneShotDataset, check_image_files, image_path
from trainers.evaluate.oneshot.detections import DetectionSet, QueryDetections
from trainers.evaluate.oneshot.queries import Query, QueryKey, QueryPlan
from trainers.evaluate.oneshot.report import RunScores, build_report
from trainers.evaluate.oneshot.scoring import ground_truth_without, score_results

logger = logging.getLogger(__name__)

__all__ = ["evaluate", "run_matcher"]

#: Most references given to one ``match_many`` call.
MAX_REFERENCES_PER_CALL = 64


# -- detections from a matcher ----------------------------------------------------------


def run_matcher(
    matcher: Any,
    dataset: OneShotDataset,
    plan: QueryPlan,
    *,
    images_dir: str | os.PathLike[str],
    max_instances: int = 100,
    score_threshold: float = 0.05,
    progress: bool = True,
) -> DetectionSet:
    """Run every query of ``plan`` through a matcher.

    Args:
        matcher: an object with ``match`` (and, for several references, ``match_many``).
        dataset: the annotations.
        plan: the queries.
        images_dir: folder holding the images' ``file_name`` paths.
        max_instances: instances kept per query (COCO scores at most 100).
        score_threshold: lowest score kept; the AP pass wants it low.
        progress: show a tqdm progress bar (stderr).

    Returns:
        The detections.

    Raises:
        InvalidArgumentError: a missing image or a mask that does not fit its scene.
    """
    from tqdm import tqdm

    from matcher.images import load_image
    from matcher.structures import Reference

    check_image_files(
        dataset,
        images_dir,
        {q.image_id for q in plan.queries} | {q.reference.image_id for q in plan.queries},
    )
    references = _ImageCache(lambda i: load_image(image_path(dataset, images_dir, i)))
    by_image = plan.by_image()
    found: dict[QueryKey, QueryDetections] = {}
    mask_kinds: set[bool] = set()
    for image_id, queries in tqdm(
        by_image.items(),
        total=len(by_image),
        desc="coco-oneshot",
        unit="scene",
        disable=not progress,
    ):
        scene = load_image(image_path(dataset, images_dir, image_id))
        for chunk in _chunks(queries, MAX_REFERENCES_PER_CALL):
            refs = [
                Reference.from_image(
                    references.get(q.reference.image_id),
                    box=q.reference.box,
                    id=f"ann-{q.reference.annotation_id}",
                )
                for q in chunk
            ]
            results = _match(
                matcher, refs, scene, max_instances=max_instances, score_threshold=score_threshold
            )
            for query, result in zip(chunk, results, strict=True):
                det = _from_instances(result.instances, scene.shape[:2])
                if len(det.scores):
                    mask_kinds.add(det.masks is not None)
                    found[query.key] = det
    if len(mask_kinds) > 1:
        raise InvalidArgumentError("the matcher returned masks for some instances and not others")
    return DetectionSet(by_query=found, has_masks=mask_kinds == {True})


def _match(
    matcher: Any, refs: list[Any], scene: np.ndarray, *, max_instances: int, score_threshold: float
) -> list[Any]:
    kwargs = {"max_instances": max_instances, "score_threshold": score_threshold}
    match_many = getattr(matcher, "match_many", None)
    if len(refs) == 1 or match_many is None:
        return [matcher.match(ref, scene, **kwargs) for ref in refs]
    return list(match_many(refs, scene, **kwargs))


def _from_instances(instances: Sequence[Any], scene_size: tuple[int, int]) -> QueryDetections:
    from matcher.mask_codec import encode_rle

    boxes = np.array([inst.box for inst in instances], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] -= boxes[:, :2]  # xyxy -> COCO xywh
    scores = np.array([inst.score for inst in instances], dtype=np.float64)
    with_mask = [inst.mask is not None for inst in instances]
    if not instances or not all(with_mask):
        if any(with_mask):
            raise InvalidArgumentError("the matcher returned masks for some instances only")
        return QueryDetections(boxes, scores, None)
    masks = []
    for inst in instances:
        if tuple(inst.mask.shape) != tuple(scene_size):
            raise InvalidArgumentError(
                f"the matcher returned a {inst.mask.shape} mask for a {scene_size} scene"
            )
        masks.append(encode_rle(inst.mask))
    return QueryDetections(boxes, scores, tuple(masks))


def _chunks(items: list[Query], size: int) -> Iterator[list[Query]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _ImageCache:
    """A small least-recently-used cache of decoded reference images."""

    def __init__(self, load: Any, size: int = 128) -> None:
        self._load, self._size = load, size
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, key: int) -> np.ndarray:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = self._load(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


# -- scoring ----------------------------------------------------------------------------


def evaluate(
    dataset: OneShotDataset,
    plan: QueryPlan,
    detections: DetectionSet,
    *,
    threshold: float,
    source: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score detections: AP per run and group, spread over runs, absent pass, report.

    Args:
        dataset: the annotations.
        plan: the queries the detections answer.
        detections: from :func:`run_matcher` or
            :func:`~trainers.evaluate.oneshot.detections.read_detections`.
        threshold: operating score threshold (recall/precision, absent false positives).
        source: what produced the detections, copied into the report.
        settings: further settings copied into the report.

    Returns:
        The JSON-ready report (:func:`~trainers.evaluate.oneshot.report.build_report`).
    """
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise InvalidArgumentError(f"threshold must be within [0, 1], got {threshold}")
    gt = ground_truth_without(dataset.coco, (p for g in plan.groups for p in plan.skipped[g]))
    evaluate_segm = dataset.has_masks and (detections.has_masks or not detections.by_query)
    iou_types = ("bbox", "segm") if evaluate_segm else ("bbox",)
    scores: dict[str, list[RunScores]] = {}
    for group in plan.groups:
        categories = plan.split.group(group)
        runs = []
        for run in range(plan.runs):
            present = [
                q for q in plan.queries if q.group == group and q.run == run and not q.absent
            ]
            images = sorted({q.image_id for q in present})
            keys = [q.key for q in present]
            logger.info("scoring %s run %d: %d queries", group, run, len(keys))
            by_type = {}
            for iou_type in iou_types:
                by_type[iou_type] = score_results(
                    gt,
                    detections.results(keys, masks=iou_type == "segm"),
                    iou_type=iou_type,
                    category_ids=categories,
                    image_ids=images,
                    threshold=threshold,
                )
            absent = [q for q in plan.queries if q.group == group and q.run == run and q.absent]
            runs.append(
                RunScores(
                    coco=by_type,
                    num_queries=len(present),
                    num_images=len(images),
                    absent_false_positives=[
                        _count_at(detections, q.key, threshold) for q in absent
                    ],
                    absent_images=len({q.image_id for q in absent}),
                )
            )
        scores[group] = runs
    return build_report(
        dataset=dataset,
        plan=plan,
        scores=scores,
        threshold=threshold,
        segm_evaluated=evaluate_segm,
        num_ignored=detections.num_ignored,
        source=source or {},
        settings=settings or {},
    )


def _count_at(detections: DetectionSet, key: QueryKey, threshold: float) -> int:
    det = detections.by_query.get(key)
    return 0 if det is None else int(np.count_nonzero(det.scores >= threshold))
