"""What a pair source is: objects seen in images (:class:`View`) and the sampling interface.

A *source* knows a dataset's objects and draws them with a given numpy generator; it
never reads pixels (the dataset does, lazily, per item). Three notions organise it:

* **identity** — what a positive pair shares: one annotation (COCO ``instance`` mode),
  one category or product (``category`` / ``catalog`` modes, and every mode of a product
  catalog such as the synthetic set, where a category *is* a product), one video track.
  Identities are tuples starting with the source's index, so two sources never share one.
* **group** — look-alikes: different identities a matcher must tell apart. COCO instance
  mode: the category; category mode: the supercategory; products: the look-alike
  family; videos: the object class. ``None`` when the source has no such notion.
* **view** — one object in one image: the image file, its box and (optionally) its
  segmentation, decoded only when the pair is built.

Implementations: :class:`trainers.data.coco.CocoSource` and
:class:`trainers.data.video.VideoSource`.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Boxes with a side shorter than this (pixels) are never used.
MIN_SIDE = 4.0


@dataclass(frozen=True, eq=False)
class View:
    """One object in one image.

    Attributes:
        image: path of the image file.
        box: ``(x0, y0, x1, y1)`` float pixels in that image, or ``None`` for a catalog
            photo whose box is the foreground on its plain background (found when the
            image is read, see :func:`matcher.structures.foreground_box`).
        identity: what positives share (see the module docstring).
        group: look-alike group, or ``None``.
        segmentation: COCO segmentation (polygon list or RLE dict) of the object, decoded
            lazily, or ``None`` when the source has no masks.
    """

    image: str
    box: tuple[float, float, float, float] | None
    identity: tuple[Hashable, ...]
    group: Hashable | None = None
    segmentation: Any = None


class PairSource(abc.ABC):
    """A dataset's objects, sampled with an explicit generator.

    Every method draws only from the ``rng`` it is given, so a pair depends on nothing
    but that generator's state.

    Attributes:
        name: how errors and logs refer to the source (e.g. ``train.data[0] (coco ...)``).
        index: the source's position among the sources; first element of its identities.
        num_identities: distinct identities that can be drawn as search objects.
    """

    name: str
    index: int
    num_identities: int

    @abc.abstractmethod
    def positive(self, rng: np.random.Generator) -> tuple[View, View]:
        """A positive pair ``(reference, search)`` of one identity."""

    @abc.abstractmethod
    def reference(self, rng: np.random.Generator) -> View:
        """A reference view, distributed as the reference of :meth:`positive`."""

    @abc.abstractmethod
    def search(self, rng: np.random.Generator, *, exclude: tuple[Hashable, ...] | None) -> View:
        """Any object of the source as a search view, of an identity other than ``exclude``.

        Raises:
            LookupError: the source has no identity other than ``exclude``.
        """

    @abc.abstractmethod
    def distractor(self, rng: np.random.Generator, reference: View) -> View | None:
        """A look-alike of ``reference``: same group, another identity (``None`` if none)."""


def draw_excluding(
    rng: np.random.Generator,
    keys: np.ndarray,
    exclude: Hashable | None,
    *,
    tries: int = 8,
) -> int:
    """Index of a uniformly drawn element of ``keys`` whose key differs from ``exclude``.

    Rejection sampling for a few tries, then an exact draw among the eligible elements,
    so the result is uniform over them and the cost is O(1) in the usual case.

    Args:
        rng: generator (consumed).
        keys: ``(N,)`` identity key of each element.
        exclude: key to avoid, or ``None``.
        tries: rejection attempts before the exact draw.

    Returns:
        An index into ``keys``.

    Raises:
        LookupError: every element has the excluded key (or ``keys`` is empty).
    """
    n = len(keys)
    if n == 0:
        raise LookupError("nothing to draw from")
    for _ in range(tries):
        i = int(rng.integers(n))
        if exclude is None or keys[i] != exclude:
            return i
    eligible = np.flatnonzero(keys != exclude)
    if len(eligible) == 0:
        raise LookupError("every candidate has the excluded identity")
    return int(eligible[rng.integers(len(eligible))])
