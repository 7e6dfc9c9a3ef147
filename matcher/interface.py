"""The one interface every matcher implements: what :func:`matcher.load` returns.

The Siamese matchers (:class:`matcher.siamese_matcher.SiameseMatcher`), the Siamese Mask
R-CNN (:class:`matcher.siam_mask_rcnn_matcher.SiamMaskRCNNMatcher`) and the classical
baselines (:class:`matcher.baselines.base.BaselineMatcher`) all derive from
:class:`Matcher`; the service, the CLI and the evaluations use nothing else of them.

A matcher encodes a reference once (:meth:`Matcher.encode_reference`: its own feature
type, tagged with the matcher's name so features of another matcher are refused) and
finds every instance of one or several references in a scene (:meth:`Matcher.match`,
:meth:`Matcher.match_many`: the scene is read and prepared once for all of them). The
defaults of both are the matcher's own :attr:`~Matcher.score_threshold` and
:attr:`~Matcher.max_instances`. Trackers come from :meth:`Matcher.tracker`, which raises
:class:`~matcher.errors.NoTrackingModeError` for matchers without a tracking mode.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from matcher.checks import check_float, check_int
from matcher.errors import NoTrackingModeError
from matcher.images import ImageLike
from matcher.structures import MatchResult

if TYPE_CHECKING:
    from matcher.config import Recipe


class Matcher(abc.ABC):
    """A reference-to-scene matcher (see the module docstring).

    Attributes:
        device: where its network runs (CPU for the baselines).
        net: its network (an empty module for the baselines: nothing to learn).
        tracks: whether :meth:`tracker` gives a tracker.
    """

    device: torch.device
    net: torch.nn.Module
    tracks: bool = False

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The name :func:`matcher.load` knows it by (the recipe or baseline name)."""

    @property
    @abc.abstractmethod
    def kind(self) -> str:
        """``"siamese"``, ``"detector"`` or ``"baseline"``."""

    @property
    @abc.abstractmethod
    def score_threshold(self) -> float:
        """Its operating score threshold: the default of ``match``'s ``score_threshold``."""

    @property
    @abc.abstractmethod
    def max_instances(self) -> int:
        """The default of ``match``'s ``max_instances``."""

    @abc.abstractmethod
    def encode_reference(self, reference: Any) -> Any:
        """Prepare a :class:`~matcher.structures.Reference` once, for any number of
        ``match`` calls.

        Raises:
            InvalidArgumentError: not a reference.
        """

    @abc.abstractmethod
    def match_many(
        self,
        references: Sequence[Any],
        scene: ImageLike,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
    ) -> list[MatchResult]:
        """:meth:`match` for several references, the scene read and prepared once.

        Returns:
            One :class:`MatchResult` per reference, in order (``[]`` for none).
        """

    def match(
        self,
        reference: Any,
        scene: ImageLike,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
        **options: Any,
    ) -> MatchResult:
        """Find every instance of ``reference`` in ``scene``.

        Args:
            reference: a :class:`~matcher.structures.Reference` or this matcher's
                :meth:`encode_reference` output.
            scene: any image :func:`matcher.images.load_image` reads.
            max_instances: cap on returned instances (:attr:`max_instances` if ``None``).
            score_threshold: minimum score in ``[0, 1]`` (:attr:`score_threshold` if
                ``None``).
            options: the matcher's own keyword options of :meth:`match_many` (e.g. the
                Siamese matchers' ``distractor_aware``).

        Returns:
            The instances, best first, boxes in scene pixels.

        Raises:
            InvalidImageError: the scene cannot be read.
            InvalidArgumentError: a bad reference, ``max_instances`` or ``score_threshold``.
        """
        return self.match_many(
            [reference],
            scene,
            max_instances=max_instances,
            score_threshold=score_threshold,
            **options,
        )[0]

    def tracker(self) -> Any:
        """A new tracker sharing this matcher's network.

        Raises:
            NoTrackingModeError: the matcher has no tracking mode (the default).
        """
        raise NoTrackingModeError(f"{self.name} has no tracking mode")

    def describe(self) -> dict[str, Any]:
        """What the matcher is, as plain data (logs, ``/v1/recipes``-style listings)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "score_threshold": float(self.score_threshold),
            "max_instances": int(self.max_instances),
            "tracking": self.tracks,
            "device": str(self.device),
        }


class RecipeMatcher(Matcher):
    """A matcher built from a recipe (the Siamese matchers, the Siamese Mask R-CNN): its
    name and the defaults of ``match`` are the recipe's (``inference.match``).

    Attributes:
        recipe: the resolved recipe.
    """

    recipe: Recipe

    @property
    def name(self) -> str:
        """The recipe name."""
        return self.recipe.name

    @property
    def score_threshold(self) -> float:
        """The recipe's ``inference.match.score_threshold``."""
        return float(self.recipe.inference.match.score_threshold)

    @property
    def max_instances(self) -> int:
        """The recipe's ``inference.match.max_instances``."""
        return int(self.recipe.inference.match.max_instances)


__all__ = ["Matcher", "RecipeMatcher"]


#: Most instances one ``match`` call may return.
MAX_INSTANCES_LIMIT = 100


def resolve_match_limits(
    max_instances: int | None,
    score_threshold: float | None,
    *,
    default_max_instances: int,
    default_threshold: float,
) -> tuple[int, float]:
    """Validate ``match``'s ``max_instances`` and ``score_threshold`` (``None``: default).

    Raises:
        InvalidArgumentError: not an integer in ``[1, 100]`` / not a number in ``[0, 1]``.
    """
    if max_instances is None:
        max_instances = default_max_instances
    if score_threshold is None:
        score_threshold = default_threshold
    limit = check_int("max_instances", max_instances, 1, MAX_INSTANCES_LIMIT)
    threshold = check_float("score_threshold", score_threshold, 0.0, 1.0)
    return limit, threshold
