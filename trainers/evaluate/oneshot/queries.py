"""The one-shot queries: the reference rule and the seeded reference draw.

**Queries.** For every evaluated image and every category of the evaluated groups that has
at least one non-crowd instance in it (a *present pair*), each run issues one query: a
reference instance of that category, drawn from **another** image. Beyond the original
protocol, an *absent* pass draws per image and group ``absent_per_image`` categories with
no annotation at all in the image (crowd included) and issues a query for each, with a
reference from any image.

**Reference rule.** An annotation may serve as a reference when it is not a crowd region
and both sides of its box are at least ``min_size`` pixels. Present pairs whose category
has no eligible instance outside the image are *skipped*: they get no query and their
ground truth is left out of scoring (reported as ``num_skipped_pairs``).

**Seeded draw.** Every choice has its own generator,
``numpy.random.default_rng([seed, run, image_id, tag, x])``: ``tag = 0, x = category_id``
picks a present pair's reference uniformly from the category's eligible instances outside
the image, sorted by annotation id; ``tag = 1, x = group index`` picks the absent
categories (uniformly, without replacement, from the group's sorted eligible ids); and
``tag = 2, x = category_id`` picks an absent category's reference from all its eligible
instances. A draw therefore depends only on the seed, the run index, the image and the
category: not on the image order, the number of images evaluated or the model.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matcher.checks import check_int
from matcher.errors import InvalidArgumentError
from trainers.evaluate.oneshot.data import OneShotDataset
from trainers.evaluate.oneshot.splits import GROUPS, ClassSplit

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
#: A query's identity: ``(run, image_id, category_id)``.
QueryKey = tuple[int, int, int]

_TAG_PRESENT, _TAG_ABSENT_CATEGORIES, _TAG_ABSENT_REFERENCE = 0, 1, 2


@dataclass(frozen=True)
class ReferenceRule:
    """Which annotations may serve as references.

    Attributes:
        min_size: smallest box side, in pixels, of a reference instance.
    """

    min_size: float = 16.0

    def eligible(self, annotation: dict[str, Any]) -> bool:
        """Whether ``annotation`` (a COCO record) may be a reference."""
        _, _, w, h = annotation["bbox"]
        return not annotation["iscrowd"] and min(w, h) >= self.min_size

    def describe(self) -> str:
        """The rule in words, for reports."""
        return (
            f"a reference is a non-crowd instance whose box is at least {self.min_size:g} px "
            "on both sides, taken from an image other than the query image; present pairs "
            "with no such instance are skipped and their ground truth left out of scoring"
        )


@dataclass(frozen=True)
class RefInstance:
    """A reference instance: an annotation and its box.

    Attributes:
        annotation_id: COCO annotation id.
        image_id: the image it lies in.
        box: ``(x0, y0, x1, y1)`` float pixels, clipped to the image.
    """

    annotation_id: int
    image_id: int
    box: Box


@dataclass(frozen=True)
class Query:
    """One (reference, scene) evaluation.

    Attributes:
        run: run index, ``0 .. runs-1``.
        image_id: the scene.
        category_id: the reference's category; every detection gets this label.
        group: ``"unseen"`` or ``"seen"``.
        absent: the category has no annotation in the scene (absent pass).
        reference: the drawn reference instance.
    """

    run: int
    image_id: int
    category_id: int
    group: str
    absent: bool
    reference: RefInstance

    @property
    def key(self) -> QueryKey:
        """``(run, image_id, category_id)``."""
        return (self.run, self.image_id, self.category_id)


@dataclass(frozen=True, eq=False)
class QueryPlan:
    """Every query of an evaluation, in scene order.

    Attributes:
        split: the class split.
        groups: the evaluated groups.
        runs: number of runs.
        seed: the draw's seed.
        image_ids: the evaluated images, sorted.
        queries: all queries, sorted by image, run, category.
        skipped: group -> present pairs ``(image_id, category_id)`` without a reference.
        rule: the reference rule.
        absent_per_image: absent categories drawn per image and group.
    """

    split: ClassSplit
    groups: tuple[str, ...]
    runs: int
    seed: int
    image_ids: tuple[int, ...]
    queries: tuple[Query, ...]
    skipped: dict[str, tuple[tuple[int, int], ...]]
    rule: ReferenceRule
    absent_per_image: int

    def by_key(self) -> dict[QueryKey, Query]:
        """Queries indexed by :attr:`Query.key`."""
        return {q.key: q for q in self.queries}

    def by_image(self) -> dict[int, list[Query]]:
        """Queries grouped by scene, in :attr:`image_ids` order (scenes without any omitted)."""
        out: dict[int, list[Query]] = defaultdict(list)
        for q in self.queries:
            out[q.image_id].append(q)
        return {i: out[i] for i in self.image_ids if i in out}

    def to_dict(self, dataset: OneShotDataset) -> dict[str, Any]:
        """JSON form (``--export-references``): the draw, for external models."""
        return {
            "annotations": dataset.path,
            "split": self.split.to_dict(),
            "groups": list(self.groups),
            "runs": self.runs,
            "seed": self.seed,
            "reference_rule": self.rule.describe(),
            "queries": [
                {
                    "run": q.run,
                    "image_id": q.image_id,
                    "category_id": q.category_id,
                    "group": q.group,
                    "absent": q.absent,
                    "reference": {
                        "annotation_id": q.reference.annotation_id,
                        "image_id": q.reference.image_id,
                        "file_name": dataset.images[q.reference.image_id]["file_name"],
                        "box": [round(v, 3) for v in q.reference.box],
                    },
                }
                for q in self.queries
            ],
        }


# -- the draw ---------------------------------------------------------------------------


def reference_pools(dataset: OneShotDataset, rule: ReferenceRule) -> dict[int, list[RefInstance]]:
    """Category id -> its eligible reference instances, sorted by annotation id."""
    pools: dict[int, list[RefInstance]] = {c: [] for c in dataset.categories}
    for ann in sorted(dataset.coco.dataset["annotations"], key=lambda a: a["id"]):
        if not rule.eligible(ann):
            continue
        img = dataset.images[ann["image_id"]]
        x, y, w, h = (float(v) for v in ann["bbox"])
        width, height = float(img["width"]), float(img["height"])
        box = (max(0.0, x), max(0.0, y), min(width, x + w), min(height, y + h))
        if box[2] - box[0] < rule.min_size or box[3] - box[1] < rule.min_size:
            continue
        pools[ann["category_id"]].append(
            RefInstance(annotation_id=int(ann["id"]), image_id=int(ann["image_id"]), box=box)
        )
    return pools


def draw_queries(
    dataset: OneShotDataset,
    split: ClassSplit,
    *,
    runs: int,
    seed: int,
    groups: Sequence[str] = GROUPS,
    rule: ReferenceRule | None = None,
    absent_per_image: int = 1,
    image_ids: Iterable[int] | None = None,
) -> QueryPlan:
    """Draw every query of an evaluation (see the module docstring for the rule).

    Args:
        dataset: the annotations.
        split: the class split.
        runs: number of runs (independent reference draws), ``>= 1``.
        seed: the draw's seed, ``>= 0``.
        groups: which of ``"unseen"``, ``"seen"`` to evaluate.
        rule: the reference rule (default :class:`ReferenceRule`).
        absent_per_image: absent categories per image and group; 0 disables the pass.
        image_ids: the scenes to evaluate (default: every image of the dataset).

    Returns:
        The plan.

    Raises:
        InvalidArgumentError: a count or seed out of range, an unknown group or image id.
    """
    rule = rule or ReferenceRule()
    check_int("runs", runs, 1, 1000)
    check_int("seed", seed, 0, 2**63 - 1)
    check_int("absent_per_image", absent_per_image, 0, 1000)
    groups = tuple(groups)
    if not groups or any(g not in GROUPS for g in groups) or len(set(groups)) != len(groups):
        raise InvalidArgumentError(f"groups must be distinct names among {GROUPS}, got {groups}")
    ids = sorted(dataset.images) if image_ids is None else sorted(set(image_ids))
    unknown = [i for i in ids if i not in dataset.images]
    if unknown:
        raise InvalidArgumentError(f"unknown image ids {unknown[:5]}")
    pools = reference_pools(dataset, rule)
    own: dict[tuple[int, int], list[int]] = defaultdict(list)  # (cat, image) -> pool positions
    for cat, pool in pools.items():
        for position, ref in enumerate(pool):
            own[(cat, ref.image_id)].append(position)
    group_sets = {g: frozenset(split.group(g)) for g in groups}
    queries: list[Query] = []
    skipped: dict[str, list[tuple[int, int]]] = {g: [] for g in groups}
    for image_id in ids:
        for run in range(runs):
            for group in groups:
                for cat in sorted(dataset.present[image_id] & group_sets[group]):
                    excluded = own.get((cat, image_id), [])
                    size = len(pools[cat]) - len(excluded)
                    if size == 0:
                        if run == 0:
                            skipped[group].append((image_id, cat))
                        continue
                    pick = int(_rng(seed, run, image_id, _TAG_PRESENT, cat).integers(size))
                    ref = pools[cat][_skip_positions(pick, excluded)]
                    queries.append(Query(run, image_id, cat, group, False, ref))
                if absent_per_image:
                    queries.extend(
                        _absent_queries(
                            pools,
                            sorted(group_sets[group] - dataset.annotated[image_id]),
                            seed=seed,
                            run=run,
                            image_id=image_id,
                            group=group,
                            group_index=GROUPS.index(group),
                            count=absent_per_image,
                        )
                    )
    queries.sort(key=lambda q: (q.image_id, q.run, q.category_id))
    for group, pairs in skipped.items():
        if pairs:
            logger.warning(
                "%s: %d present pair(s) have no reference outside their image and are skipped",
                group,
                len(pairs),
            )
    return QueryPlan(
        split=split,
        groups=groups,
        runs=runs,
        seed=seed,
        image_ids=tuple(ids),
        queries=tuple(queries),
        skipped={g: tuple(p) for g, p in skipped.items()},
        rule=rule,
        absent_per_image=absent_per_image,
    )


def _absent_queries(
    pools: dict[int, list[RefInstance]],
    candidates: list[int],
    *,
    seed: int,
    run: int,
    image_id: int,
    group: str,
    group_index: int,
    count: int,
) -> list[Query]:
    candidates = [c for c in candidates if pools[c]]
    if not candidates:
        return []
    rng = _rng(seed, run, image_id, _TAG_ABSENT_CATEGORIES, group_index)
    chosen = rng.choice(len(candidates), size=min(count, len(candidates)), replace=False)
    out = []
    for cat in sorted(candidates[int(i)] for i in chosen):
        pick = _rng(seed, run, image_id, _TAG_ABSENT_REFERENCE, cat).integers(len(pools[cat]))
        out.append(Query(run, image_id, cat, group, True, pools[cat][int(pick)]))
    return out


def _skip_positions(index: int, excluded: list[int]) -> int:
    """Position in a pool of the ``index``-th entry not at one of the sorted ``excluded``."""
    for position in excluded:
        if position > index:
            break
        index += 1
    return index


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) % 2**64 for k in keys])
