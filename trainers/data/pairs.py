"""Drawing a pair: which source (by ratio), positive or negative, and which distractor.

:class:`PairSampler` turns one numpy generator into one :class:`Pair`, in this order of
draws: the source (probabilities ``ratios / sum(ratios)``), whether the pair is negative
(probability ``negative_ratio``), then

* positive: the source's :meth:`~trainers.data.sources.PairSource.positive`;
* negative: a reference from the source, then, with probability
  ``same_category_negatives``, a look-alike of it from the same source (same group,
  another identity: a COCO category-mate, a product of the same family, a track of the
  same class); otherwise, or when the reference has no look-alike, any object of another
  identity from a source drawn again by ratio (PySOT's and video_analyst's random
  negatives).

The pair depends on nothing but the generator, which is what makes the dataset
deterministic per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.errors import ConfigError
from trainers.data.sources import PairSource, View

_NEGATIVE_TRIES = 8


@dataclass(frozen=True)
class Pair:
    """A sampled training pair (no pixels yet).

    Attributes:
        template: the reference view.
        search: the search view: the same identity (positive) or another (negative).
        label: 1 positive, 0 negative.
        source: index of the source the reference came from.
        distractor: whether a negative's search object is a look-alike of the reference.
    """

    template: View
    search: View
    label: int
    source: int
    distractor: bool = False


class PairSampler:
    """Mixes sources by ratio and makes positive and negative pairs.

    Args:
        sources: the pair sources; source ``k`` must use ``k`` as its identity index.
        ratios: relative sampling weight of each source (``> 0``).
        negative_ratio: probability of a negative pair.
        same_category_negatives: probability that a negative's search object is a
            look-alike of the reference (when the reference has one).

    Raises:
        ConfigError: no source, ratios not positive or not one per source, a probability
            outside ``[0, 1]``, or negatives requested with only one identity in all.
    """

    def __init__(
        self,
        sources: Sequence[PairSource],
        *,
        ratios: Sequence[float],
        negative_ratio: float,
        same_category_negatives: float,
    ) -> None:
        if not sources:
            raise ConfigError("no pair sources")
        if len(ratios) != len(sources) or any(not r > 0 for r in ratios):
            raise ConfigError(f"source ratios must be one positive number per source: {ratios}")
        for key, value in (
            ("negative_ratio", negative_ratio),
            ("same_category_negatives", same_category_negatives),
        ):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"train.{key} must be in [0, 1], got {value}")
        if negative_ratio > 0 and sum(s.num_identities for s in sources) < 2:
            raise ConfigError(
                "negative pairs need at least two distinct objects across the sources; "
                f"{', '.join(s.name for s in sources)} have one"
            )
        self.sources = list(sources)
        weights = np.asarray(ratios, np.float64)
        self.probabilities = weights / weights.sum()
        self.negative_ratio = float(negative_ratio)
        self.same_category_negatives = float(same_category_negatives)

    def _source(self, rng: np.random.Generator) -> int:
        return int(rng.choice(len(self.sources), p=self.probabilities))

    def sample(self, rng: np.random.Generator) -> Pair:
        """Draw one pair.

        Args:
            rng: generator (consumed).

        Returns:
            The pair's views, label and source index.
        """
        k = self._source(rng)
        source = self.sources[k]
        if rng.random() >= self.negative_ratio:
            template, search = source.positive(rng)
            return Pair(template, search, 1, k)
        template = source.reference(rng)
        if rng.random() < self.same_category_negatives:
            look_alike = source.distractor(rng, template)
            if look_alike is not None:
                return Pair(template, look_alike, 0, k, distractor=True)
        return Pair(template, self._other(rng, template), 0, k)

    def _other(self, rng: np.random.Generator, template: View) -> View:
        """Any object whose identity differs from ``template``'s, from a source by ratio."""
        for _ in range(_NEGATIVE_TRIES):
            source = self.sources[self._source(rng)]
            try:
                return source.search(rng, exclude=template.identity)
            except LookupError:
                continue
        # Every draw hit a source holding only the template's identity: take any other.
        for source in self.sources:
            if source.num_identities > 1 or source.index != template.identity[0]:
                return source.search(rng, exclude=template.identity)
        raise AssertionError("unreachable: the constructor checked for two identities")
