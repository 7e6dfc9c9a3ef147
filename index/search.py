"""Which catalog products are in a scene: retrieve with FAISS, verify with the matcher.

1. **Views.** A product is usually small in a scene, and a whole-scene vector mostly
   describes the background, so the scene is embedded as the whole image plus square
   windows of several sizes (:data:`WINDOWS`: a quarter, 35 % and half of the shorter side),
   each size overlapping its neighbours by half (:func:`scene_views`; 121 views of a
   640x480 scene). A window about the size of a product holds mostly that product, so its
   vector is close to the product's own. (A 3 x 3 grid of half-size windows, the previous
   views, put 9 % of the products present in generator scenes among the best 20
   candidates; these windows put 38 % there, and 30 % among the best 10:
   ``benchmarks/RESULTS.md``, issue 15.)
2. **Retrieval.** Each view's top-``candidates`` products are merged; a product's
   ``retrieval_score`` is its best cosine similarity over the views; the best
   ``candidates`` products go on (10 by default: verification costs about a tenth of a
   second per candidate on two cores, and with these views 10 candidates found 32 of the
   products present in twelve generator scenes where 20 found 36).
3. **Verification.** Their cached template features (:meth:`Catalog.template_features`)
   go through *one* :meth:`matcher.SiameseMatcher.match_many` call — one pass of the
   scene's backbone for all candidates — with the recipe's ``inference.catalog_search``
   settings (the default verifies 8 Siamese boxes per product with the embedder and 5
   with homographies, where a one-shot match checks 32 and 10: as many products found on
   twenty validation scenes, in 0.78x the time).
4. **Re-ranking** by verification score (the best instance's), then retrieval score.
   Products without an instance above the matcher's threshold are dropped.

``search_scene(..., timings=d)`` fills ``d`` with the seconds each stage took
(:data:`STAGES`); the service sends them as a ``Server-Timing`` header and a histogram.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.catalog import Catalog
from matcher.errors import InvalidArgumentError, ProductNotFoundError
from matcher.images import ImageLike, load_image
from matcher.siamese_matcher import SiameseMatcher
from matcher.structures import Instance

logger = logging.getLogger(__name__)

#: Largest ``k`` and ``candidates`` accepted.
MAX_RESULTS = 100
MAX_CANDIDATES = 1000
#: Products retrieved and verified by default (the service's ``SEARCH_CANDIDATES``, the
#: CLI's ``--candidates``): see the module docstring, step 2.
DEFAULT_CANDIDATES = 10
#: The stages :func:`search_scene` times: reading the scene, embedding its views, the FAISS
#: search (with the hits' product names), fetching the candidates' template features, the
#: batched verification (``match_many``) and re-ranking with the hits' metadata.
STAGES = ("decode", "embed", "retrieve", "templates", "verify", "rerank")
#: Sides of the square retrieval windows, as fractions of the scene's shorter side.
WINDOWS = (0.25, 0.35, 0.5)
#: Share of a window's side that it overlaps its neighbour of the same size.
WINDOW_OVERLAP = 0.5
#: Most views :func:`scene_views` makes of one scene (each costs an embedding).
MAX_VIEWS = 1000


@dataclass(frozen=True, eq=False)
class SceneHit:
    """A catalog product found in a scene.

    Attributes:
        product_id: the product.
        score: verification score, the best instance's score in ``[0, 1]``.
        retrieval_score: best cosine similarity of the product's vector to a scene view.
        metadata: the product's metadata.
        instances: where it is, best first (boxes xyxy in scene pixels, masks if the
            matcher makes them).
    """

    product_id: str
    score: float
    retrieval_score: float
    metadata: dict[str, Any]
    instances: list[Instance]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (masks as COCO RLE)."""
        return {
            "product_id": self.product_id,
            "score": round(float(self.score), 6),
            "retrieval_score": round(float(self.retrieval_score), 6),
            "metadata": self.metadata,
            "instances": [inst.to_dict() for inst in self.instances],
        }


def scene_views(
    scene: np.ndarray,
    *,
    windows: Sequence[float] = WINDOWS,
    overlap: float = WINDOW_OVERLAP,
) -> list[np.ndarray]:
    """The whole scene and, for each window size, square windows covering it.

    Args:
        scene: ``(H, W, 3)`` uint8.
        windows: window sides as fractions of ``min(H, W)``, each in ``(0, 1]`` (empty:
            the whole scene only).
        overlap: share of a window's side shared with the next window of the same size,
            in ``[0, 0.9]``; windows are evenly spaced from edge to edge, so neighbours
            overlap at least this much.

    Returns:
        The views (array views, not copies): the scene first, then each size's windows
        row by row.

    Raises:
        InvalidArgumentError: a fraction or ``overlap`` out of range, or more than
            :data:`MAX_VIEWS` views.
    """
    check_windows(windows, overlap)
    height, width = scene.shape[:2]
    grids = []
    for fraction in windows:
        side = max(1, round(min(height, width) * fraction))
        stride = max(1, round(side * (1.0 - overlap)))
        grids.append((side, _starts(height, side, stride), _starts(width, side, stride)))
    count = 1 + sum(len(ys) * len(xs) for _, ys, xs in grids)
    if count > MAX_VIEWS:
        raise InvalidArgumentError(
            f"windows {tuple(windows)} with overlap {overlap} make {count} views of this "
            f"scene; at most {MAX_VIEWS} (use larger windows or less overlap)"
        )
    views = [scene]
    for side, ys, xs in grids:
        views.extend(scene[y : y + side, x : x + side] for y in ys for x in xs)
    return views


def check_windows(windows: Sequence[float], overlap: float) -> None:
    """Raise :class:`InvalidArgumentError` unless :func:`scene_views` accepts these."""
    for value in windows:
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
            raise InvalidArgumentError(
                f"window sizes must be fractions of the shorter side in (0, 1], got {value!r}"
            )
    if not isinstance(overlap, int | float) or isinstance(overlap, bool) or not 0 <= overlap <= 0.9:
        raise InvalidArgumentError(f"window overlap must be in [0, 0.9], got {overlap!r}")


def _starts(length: int, side: int, stride: int) -> list[int]:
    """Offsets of windows of ``side`` pixels at most ``stride`` apart, first and last flush
    with the edges of ``length`` pixels."""
    count = math.ceil(max(length - side, 0) / stride) + 1
    return np.linspace(0, length - side, count).round().astype(int).tolist()


def search_scene(
    catalog: Catalog,
    matcher: SiameseMatcher,
    scene: ImageLike,
    *,
    k: int = 5,
    candidates: int = DEFAULT_CANDIDATES,
    score_threshold: float | None = None,
    max_instances: int | None = None,
    windows: Sequence[float] = WINDOWS,
    timings: dict[str, float] | None = None,
) -> list[SceneHit]:
    """The catalog products found in ``scene``, best first.

    Args:
        catalog: the catalog.
        matcher: verifies candidates (its template features are cached in the catalog when
            it is the catalog's own matcher).
        scene: any image :func:`matcher.load_image` reads.
        k: products returned, 1 to :data:`MAX_RESULTS`.
        candidates: products retrieved and verified, ``k`` to :data:`MAX_CANDIDATES` (the
            service's ``SEARCH_CANDIDATES``).
        score_threshold: verification threshold (the matcher's default if ``None``).
        max_instances: instances per product (the matcher's default if ``None``).
        windows: sizes of the retrieval windows (see :func:`scene_views`).
        timings: if given, receives the seconds spent in each of :data:`STAGES` (stages
            not reached are 0); their sum is at most the call's duration.

    Returns:
        Up to ``k`` :class:`SceneHit`, by decreasing verification score.

    Raises:
        InvalidImageError: unreadable scene.
        InvalidArgumentError: ``k``, ``candidates``, ``windows`` or the matcher's
            arguments out of range.
    """
    for name, value, lo, hi in (
        ("k", k, 1, MAX_RESULTS),
        ("candidates", candidates, 1, MAX_CANDIDATES),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InvalidArgumentError(
                f"{name} must be an integer from {lo} to {hi}, got {value!r}"
            )
    if candidates < k:
        raise InvalidArgumentError(f"candidates ({candidates}) must be at least k ({k})")
    check_windows(windows, WINDOW_OVERLAP)
    laps = dict.fromkeys(STAGES, 0.0)
    if timings is not None:
        timings.update(laps)
        laps = timings
    clock = time.perf_counter()
    image = load_image(scene)
    views = scene_views(image, windows=windows)
    clock = _lap(laps, "decode", clock)
    view_hits = catalog.search_images(views, k=candidates, timings=laps)
    clock = time.perf_counter()
    best: dict[str, float] = {}
    for hits in view_hits:
        for hit in hits:
            best[hit.product_id] = max(hit.score, best.get(hit.product_id, -np.inf))
    ranked = sorted(best, key=lambda pid: (-best[pid], pid))[:candidates]
    clock = _lap(laps, "retrieve", clock)
    stored = catalog.template_features_many(ranked, matcher=matcher)
    ids = [pid for pid in ranked if pid in stored]  # others were deleted since the search
    feats = [stored[pid] for pid in ids]
    clock = _lap(laps, "templates", clock)
    if not feats:
        return []
    options = {"catalog_search": True} if isinstance(matcher, SiameseMatcher) else {}
    results = matcher.match_many(
        feats, image, max_instances=max_instances, score_threshold=score_threshold, **options
    )
    clock = _lap(laps, "verify", clock)
    found = [
        (pid, result.instances)
        for pid, result in zip(ids, results, strict=True)
        if result.instances
    ]
    found.sort(key=lambda item: (-item[1][0].score, -best[item[0]], item[0]))
    out = []
    for pid, instances in found[:k]:
        try:
            metadata = catalog.get(pid).metadata
        except ProductNotFoundError:
            continue
        out.append(
            SceneHit(
                product_id=pid,
                score=float(instances[0].score),
                retrieval_score=float(best[pid]),
                metadata=metadata,
                instances=list(instances),
            )
        )
    _lap(laps, "rerank", clock)
    logger.debug(
        "scene search: %d views, %d candidates, %d verified", len(views), len(ids), len(found)
    )
    return out


def _lap(laps: dict[str, float], stage: str, since: float) -> float:
    """Add the time since ``since`` to ``laps[stage]``; returns the current time."""
    now = time.perf_counter()
    laps[stage] += now - since
    return now
