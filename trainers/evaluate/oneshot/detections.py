"""Detections of one-shot queries: in memory, and as a COCO-results file.

**Detections file** (COCO results format, one JSON list; ``--detections``)::

    [{"image_id": 139, "category_id": 1, "bbox": [x, y, w, h], "score": 0.93,
      "segmentation": {"size": [h, w], "counts": "..."},   # optional, COCO RLE
      "run": 0},                                            # optional, default 0
     ...]

``category_id`` is the *reference's* category and ``run`` the run index
(``0 .. runs-1``), so ``(run, image_id, category_id)`` names the query, whose reference is
given by the seeded draw (``--export-references`` writes it). Either every detection has a
``segmentation`` (a compressed RLE of the image's size; polygons are not accepted) or none
has. A ``run`` at or beyond the number of runs is an error; detections of pairs that were
not queried (a category outside the evaluated groups, an absent category that was not
drawn, a skipped pair, an image beyond ``--max-images``) are counted as
``ignored_detections`` and left out. Several files' runs can be concatenated into one.
The absent pass counts the detections of the drawn absent queries: a file without them
reports no false positives there (pass ``--absent-per-image 0`` to leave the pass out).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matcher.errors import InvalidArgumentError
from trainers.evaluate.oneshot.data import OneShotDataset
from trainers.evaluate.oneshot.queries import QueryKey, QueryPlan

logger = logging.getLogger(__name__)

#: The alphabet of compressed COCO RLE counts (6-bit groups offset by 48: "0" .. "o").
_RLE_COUNTS = re.compile(r"[0-o]*")


@dataclass(frozen=True, eq=False)
class QueryDetections:
    """What one query found.

    Attributes:
        boxes: ``(N, 4)`` float64, COCO ``[x, y, w, h]`` pixels in the scene.
        scores: ``(N,)`` float64.
        masks: ``N`` COCO RLEs (``counts`` as ``str``) or ``None`` for box-only output.
    """

    boxes: np.ndarray
    scores: np.ndarray
    masks: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True, eq=False)
class DetectionSet:
    """The detections of every query of a plan.

    Attributes:
        by_query: query key -> its detections (queries that found nothing may be absent).
        has_masks: detections carry masks.
        num_ignored: detections that answered no query of the plan (files only).
    """

    by_query: dict[QueryKey, QueryDetections]
    has_masks: bool
    num_ignored: int = 0

    def results(self, keys: Sequence[QueryKey], *, masks: bool) -> list[dict[str, Any]]:
        """COCO results of the given queries (``segmentation`` only with ``masks``)."""
        out = []
        for key in keys:
            det = self.by_query.get(key)
            if det is None:
                continue
            run, image_id, category_id = key
            for i in range(len(det.scores)):
                record = {
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": [float(v) for v in det.boxes[i]],
                    "score": float(det.scores[i]),
                    "run": run,
                }
                if masks and det.masks is not None:
                    record["segmentation"] = det.masks[i]
                out.append(record)
        return out

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write every detection as a detections file (the format :func:`read_detections` reads)."""
        records = self.results(sorted(self.by_query), masks=self.has_masks)
        for r in records:
            r["bbox"] = [round(v, 3) for v in r["bbox"]]
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(records, fh)


# -- the file -------------------------------------------------------------------------


def read_detection_records(path: str | os.PathLike[str]) -> list[Any]:
    """The records of a detections file, unvalidated beyond being a JSON list.

    Raises:
        InvalidArgumentError: the file is missing, not JSON, or not a list.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"detections file {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            records = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(
            f"detections file {path!r} is not readable JSON: {exc}"
        ) from None
    if not isinstance(records, list):
        raise InvalidArgumentError(
            f"detections file {path!r}: expected a JSON list of COCO results"
        )
    return records


def runs_in_records(records: Sequence[Any]) -> int:
    """Number of runs a detections file covers: the largest ``run`` field plus one (1 if none)."""
    runs = [r.get("run", 0) for r in records if isinstance(r, dict)]
    valid = [r for r in runs if isinstance(r, int) and not isinstance(r, bool) and r >= 0]
    return max(valid, default=0) + 1


def read_detections(
    path: str | os.PathLike[str], dataset: OneShotDataset, plan: QueryPlan
) -> DetectionSet:
    """Read and validate a detections file (format in the module docstring).

    Raises:
        InvalidArgumentError: the file is missing, not JSON, or a record is malformed
            (the message names the first bad record).
    """
    records = read_detection_records(path)
    return detections_from_records(records, dataset, plan, name=os.fspath(path))


def detections_from_records(
    records: Any, dataset: OneShotDataset, plan: QueryPlan, *, name: str = "detections"
) -> DetectionSet:
    """Validate COCO-results records into a :class:`DetectionSet` (see :func:`read_detections`)."""
    if not isinstance(records, list):
        raise InvalidArgumentError(f"{name}: expected a JSON list of COCO results")
    queries = plan.by_key()
    grouped: dict[QueryKey, list[tuple[list[float], float, Any]]] = defaultdict(list)
    ignored = 0
    with_mask = 0
    for i, rec in enumerate(records):
        what = f"{name}: record {i}"
        key, box, score, segm = _parse_record(rec, dataset, what=what)
        if key[0] >= plan.runs:
            raise InvalidArgumentError(f"{what}: run {key[0]} but only {plan.runs} run(s)")
        with_mask += segm is not None
        if key not in queries:
            ignored += 1
            continue
        grouped[key].append((box, score, segm))
    if 0 < with_mask < len(records):
        raise InvalidArgumentError(
            f"{name}: {with_mask} of {len(records)} records have a segmentation; "
            "give it on every record or on none"
        )
    if ignored:
        logger.warning("%s: %d detection(s) answer no query of the plan; ignored", name, ignored)
    by_query = {}
    for key, dets in grouped.items():
        dets.sort(key=lambda d: -d[1])
        by_query[key] = QueryDetections(
            boxes=np.array([d[0] for d in dets], dtype=np.float64).reshape(-1, 4),
            scores=np.array([d[1] for d in dets], dtype=np.float64),
            masks=tuple(d[2] for d in dets) if with_mask else None,
        )
    return DetectionSet(by_query=by_query, has_masks=bool(with_mask), num_ignored=ignored)


def _parse_record(
    rec: Any, dataset: OneShotDataset, *, what: str
) -> tuple[QueryKey, list[float], float, dict[str, Any] | None]:
    if not isinstance(rec, dict):
        raise InvalidArgumentError(f"{what} is not an object")
    missing = [k for k in ("image_id", "category_id", "bbox", "score") if k not in rec]
    if missing:
        raise InvalidArgumentError(f"{what} lacks {', '.join(missing)}")
    run = rec.get("run", 0)
    for field in ("image_id", "category_id"):
        if isinstance(rec[field], bool) or not isinstance(rec[field], int):
            raise InvalidArgumentError(f"{what}: {field} must be an integer")
    if isinstance(run, bool) or not isinstance(run, int) or run < 0:
        raise InvalidArgumentError(f"{what}: run must be a non-negative integer")
    image = dataset.images.get(rec["image_id"])
    if image is None:
        raise InvalidArgumentError(f"{what}: unknown image_id {rec['image_id']}")
    if rec["category_id"] not in dataset.categories:
        raise InvalidArgumentError(f"{what}: unknown category_id {rec['category_id']}")
    bbox, score = rec["bbox"], rec["score"]
    if not (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(_finite(v) for v in bbox)
        and bbox[2] >= 0
        and bbox[3] >= 0
    ):
        raise InvalidArgumentError(f"{what}: bbox must be [x, y, w, h] with w, h >= 0")
    if not _finite(score):
        raise InvalidArgumentError(f"{what}: score must be a finite number")
    segm = rec.get("segmentation")
    if segm is not None:
        size = [int(image["height"]), int(image["width"])]
        if not (
            isinstance(segm, dict)
            and isinstance(segm.get("counts"), str)
            and _RLE_COUNTS.fullmatch(segm["counts"]) is not None
            and isinstance(segm.get("size"), list)
            and [int(v) for v in segm["size"] if _finite(v)] == size
        ):
            raise InvalidArgumentError(
                f"{what}: segmentation must be a compressed COCO RLE "
                f'{{"size": {size}, "counts": "..."}} for image {rec["image_id"]}'
            )
        segm = {"size": size, "counts": segm["counts"]}
    return (run, rec["image_id"], rec["category_id"]), [float(v) for v in bbox], float(score), segm


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
