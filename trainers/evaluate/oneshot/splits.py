"""Class splits of the one-shot COCO protocol: which categories are unseen, which are seen.

The four splits of Siamese Mask R-CNN (Michaelis et al. 2018; the same partition as CoAE,
AIT and BHRL) sort the 80 COCO categories by ``category_id`` and hold out every fourth
one: split ``k`` (1-4) makes the categories at 0-based positions ``k-1, k+3, k+7, ...``
unseen (20 categories, e.g. split 1 = person, airplane, boat, ...) and the other 60 seen.
Any other COCO-format dataset is split by a JSON file
``{"unseen": [category ids], "seen": [category ids]}``; ``seen`` may be left out and then
means every other category of the dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from matcher.errors import ConfigError, InvalidArgumentError

#: Number of categories in MS-COCO detection / instance segmentation.
COCO_NUM_CATEGORIES = 80
#: Number of class splits in the one-shot protocol.
NUM_SPLITS = 4
#: Names of the two category groups, in report order.
GROUPS = ("unseen", "seen")


@dataclass(frozen=True)
class ClassSplit:
    """A partition of (some of) a dataset's categories into unseen and seen.

    Attributes:
        name: ``"coco-1"`` ... ``"coco-4"`` or the split file's path.
        unseen: held-out category ids, sorted.
        seen: training category ids, sorted, disjoint from ``unseen``.
    """

    name: str
    unseen: tuple[int, ...]
    seen: tuple[int, ...]

    def group(self, name: str) -> tuple[int, ...]:
        """The category ids of group ``"unseen"`` or ``"seen"``."""
        if name not in GROUPS:
            raise InvalidArgumentError(f"unknown category group {name!r}; use one of {GROUPS}")
        return self.unseen if name == "unseen" else self.seen

    def group_of(self) -> dict[int, str]:
        """``{category_id: "unseen" | "seen"}`` for every category of the split."""
        return {**dict.fromkeys(self.seen, "seen"), **dict.fromkeys(self.unseen, "unseen")}

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "unseen": list(self.unseen), "seen": list(self.seen)}


def coco_split(split: int, category_ids: Iterable[int]) -> ClassSplit:
    """Split ``split`` (1-4) of the one-shot COCO protocol.

    Args:
        split: 1, 2, 3 or 4.
        category_ids: the dataset's category ids; must be exactly 80 (MS-COCO).

    Returns:
        The split: 20 unseen and 60 seen categories.

    Raises:
        InvalidArgumentError: ``split`` is not 1-4 or the dataset does not have the 80
            COCO categories (use a split file for other datasets).
    """
    if isinstance(split, bool) or split not in range(1, NUM_SPLITS + 1):
        raise InvalidArgumentError(f"split must be 1, 2, 3 or 4, got {split!r}")
    ordered = sorted({int(c) for c in category_ids})
    if len(ordered) != COCO_NUM_CATEGORIES:
        raise InvalidArgumentError(
            f"--split needs the {COCO_NUM_CATEGORIES} MS-COCO categories, the annotations "
            f"have {len(ordered)}; give a split file (--split-file) for other datasets"
        )
    unseen = tuple(ordered[split - 1 :: NUM_SPLITS])
    seen = tuple(c for c in ordered if c not in set(unseen))
    return ClassSplit(name=f"coco-{split}", unseen=unseen, seen=seen)


def load_split_file(path: str | os.PathLike[str], category_ids: Iterable[int]) -> ClassSplit:
    """Read a split file ``{"unseen": [...], "seen": [...]}``.

    Args:
        path: JSON file.
        category_ids: the dataset's category ids; every listed id must be one of them.

    Raises:
        InvalidArgumentError: the file is missing or not JSON.
        ConfigError: the content is malformed, names an unknown category, lists one twice
            or in both groups, or leaves ``unseen`` empty.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"split file {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"split file {path!r} is not readable JSON: {exc}") from None
    return split_from_dict(data, category_ids, name=path)


def split_from_dict(data: Any, category_ids: Iterable[int], *, name: str) -> ClassSplit:
    """Validate the content of a split file (see :func:`load_split_file`)."""
    known = {int(c) for c in category_ids}
    if not isinstance(data, Mapping):
        raise ConfigError(f"split {name}: expected an object with 'unseen' and 'seen' lists")
    extra = sorted(set(data) - set(GROUPS))
    if extra:
        raise ConfigError(f"split {name}: unknown key(s) {extra}; expected 'unseen' and 'seen'")
    if "unseen" not in data:
        raise ConfigError(f"split {name}: the 'unseen' list is missing")
    unseen = _ids(data["unseen"], known, what=f"split {name}: 'unseen'")
    if not unseen:
        raise ConfigError(f"split {name}: 'unseen' is empty")
    if "seen" in data:
        seen = _ids(data["seen"], known, what=f"split {name}: 'seen'")
        both = sorted(set(unseen) & set(seen))
        if both:
            raise ConfigError(f"split {name}: categories {both} are both unseen and seen")
    else:
        seen = tuple(sorted(known - set(unseen)))
    return ClassSplit(name=name, unseen=unseen, seen=seen)


def _ids(values: Any, known: set[int], *, what: str) -> tuple[int, ...]:
    if not isinstance(values, list):
        raise ConfigError(f"{what} must be a list of category ids")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{what}: {value!r} is not an integer category id")
        if value not in known:
            raise ConfigError(
                f"{what}: category {value} is not in the annotations "
                f"(known ids: {_short(sorted(known))})"
            )
        out.append(value)
    if len(set(out)) != len(out):
        raise ConfigError(f"{what} lists a category twice")
    return tuple(sorted(out))


def _short(values: list[int], limit: int = 12) -> str:
    text = ", ".join(str(v) for v in values[:limit])
    return text + (", ..." if len(values) > limit else "")
