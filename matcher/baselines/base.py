"""What the classical baselines share: their matcher interface, arguments and references.

A baseline matcher mirrors :class:`~matcher.siamese_matcher.SiameseMatcher`'s public face
(``name``, ``encode_reference``, ``match``, ``match_many``) so the command line, the
evaluation protocol and the service can hold either. It has no network and no weights:
``net`` is an empty module (code that counts a matcher's parameters sees zero) and there is
no tracking mode. Its tunable numbers live in a frozen dataclass per baseline, which
``key=value`` overrides replace through :func:`apply_overrides` with the same fail-loud
validation recipes get.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import math
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
import yaml

from matcher.checks import as_float, as_int
from matcher.errors import ConfigError, InvalidArgumentError, NoTrackingModeError
from matcher.images import ImageLike, load_image, resolve_match_limits
from matcher.interface import Matcher
from matcher.structures import Instance, MatchResult, Reference, plain_background

#: Most instances a single call may ask for (as for the Siamese matchers).

P = TypeVar("P")


def apply_overrides(params: P, overrides: Sequence[str] | None, *, what: str) -> P:
    """Replace fields of a frozen parameter dataclass from ``key=value`` strings.

    Values are parsed as YAML scalars and must match the field's type (an int is accepted
    for a float field).

    Args:
        params: the defaults, a frozen dataclass instance.
        overrides: ``"key=value"`` strings, applied in order.
        what: the matcher's name, for messages.

    Returns:
        A new instance with the overridden fields.

    Raises:
        ConfigError: malformed override, unknown key (the message lists the valid ones)
            or a value of the wrong type.
    """
    hints = typing.get_type_hints(type(params))
    changes: dict[str, Any] = {}
    for item in overrides or []:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{what}: override {item!r} is not of the form key=value")
        if key not in hints:
            msg = f"{what}: unknown parameter {key!r}"
            close = difflib.get_close_matches(key, list(hints), n=1)
            if close:
                msg += f" (did you mean {close[0]!r}?)"
            raise ConfigError(msg + f"; valid parameters: {', '.join(sorted(hints))}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{what}: override {item!r}: value is not valid YAML") from None
        changes[key] = _coerce(value, hints[key], f"{what}: parameter {key!r}")
    return dataclasses.replace(params, **changes) if changes else params  # type: ignore[type-var]


def _coerce(value: Any, tp: Any, name: str) -> Any:
    if tp is int:
        return as_int(name, value)
    if tp is float:
        return as_float(name, value)
    if tp is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{name} must be of type {getattr(tp, '__name__', tp)}, got {value!r}")


def check_reference(reference: object) -> Reference:
    """Return ``reference`` if it is a :class:`Reference`.

    Raises:
        InvalidArgumentError: anything else.
    """
    if not isinstance(reference, Reference):
        raise InvalidArgumentError(
            f"expected a matcher.Reference, got {type(reference).__name__}; build one "
            "with Reference.from_image(image, box)"
        )
    return reference


def box_crop(image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, tuple[int, int]]:
    """The whole pixels covered by ``box`` (at least one), and the crop's top-left corner.

    Args:
        image: ``(H, W, C)`` array.
        box: ``(x0, y0, x1, y1)`` inside the image.

    Returns:
        ``(crop, (x, y))`` with ``crop`` a view of ``image``.
    """
    height, width = image.shape[:2]
    x0 = min(max(math.floor(box[0]), 0), width - 1)
    y0 = min(max(math.floor(box[1]), 0), height - 1)
    x1 = min(max(math.ceil(box[2]), x0 + 1), width)
    y1 = min(max(math.ceil(box[3]), y0 + 1), height)
    return image[y0:y1, x0:x1], (x0, y0)


def foreground_mask(
    image: np.ndarray, box: Sequence[float], *, tolerance: int = 24, border: int = 2
) -> np.ndarray:
    """The product's silhouette inside its box, when the photo has a plain background.

    The background colour is the median of the image border (as in
    :func:`matcher.structures.foreground_box`). When at least 90 % of the border lies
    within ``tolerance`` of it, the silhouette is every pixel of the box crop that differs
    from it by more than ``tolerance``, with holes filled (white labels on a package stay
    inside). Otherwise, or when the silhouette would cover less than a fifth of the box,
    the whole box is foreground.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        box: the product's box in ``image``.
        tolerance: colour distance separating product and background.
        border: width of the border strip sampling the background.

    Returns:
        ``(h, w)`` bool, the shape of :func:`box_crop`'s crop.
    """
    crop, _ = box_crop(image, box)
    full = np.ones(crop.shape[:2], bool)
    background = plain_background(image, tolerance=tolerance, border=border)
    if background is None:
        return full
    differs = np.abs(crop.astype(np.int16) - background.astype(np.int16)).max(axis=2) > tolerance
    contours, _ = cv2.findContours(
        differs.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    filled = np.zeros(crop.shape[:2], np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    mask = filled.astype(bool)
    if mask.mean() < 0.2:
        return full
    return mask


class BaselineMatcher(Matcher):
    """Common face of the classical matchers: validation, ``match`` and no tracking.

    Subclasses set :attr:`name` and :attr:`features_type` (a frozen dataclass with
    ``recipe`` and ``reference_id`` fields), and implement :meth:`encode_reference`,
    :meth:`_prepare_scene` (once per scene) and :meth:`_match_features` (one reference in
    a prepared scene).

    Args:
        params: the baseline's parameters; a frozen dataclass with at least
            ``score_threshold`` and ``max_instances`` (the defaults of ``match``).
    """

    #: The name :func:`matcher.load` knows the baseline by.
    name: str = ""
    #: What :meth:`encode_reference` returns.
    features_type: type = object

    def __init__(self, params: Any) -> None:
        self.params = params
        self.device = torch.device("cpu")
        self.net = torch.nn.Module()  # no learned parameters

    @property
    def kind(self) -> str:
        """Always ``"baseline"``."""
        return "baseline"

    @property
    def score_threshold(self) -> float:
        """``params.score_threshold``."""
        return float(self.params.score_threshold)

    @property
    def max_instances(self) -> int:
        """``params.max_instances``."""
        return int(self.params.max_instances)

    def match_many(
        self,
        references: Sequence[Any],
        scene: ImageLike,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
    ) -> list[MatchResult]:
        """:meth:`match` for several references, preparing the scene once.

        Returns:
            One :class:`MatchResult` per reference, in order.
        """
        limit, threshold = resolve_match_limits(
            max_instances,
            score_threshold,
            default_max_instances=self.params.max_instances,
            default_threshold=self.params.score_threshold,
        )
        if not references:
            return []
        feats = [self._features(r) for r in references]
        image = load_image(scene)
        prepared = self._prepare_scene(image)
        return [
            MatchResult(
                instances=self._match_features(f, prepared, limit, threshold),
                scene_size=(image.shape[0], image.shape[1]),
                reference_id=f.reference_id,
            )
            for f in feats
        ]

    def tracker(self) -> Any:
        """Baselines have no tracking mode.

        Raises:
            NoTrackingModeError: always.
        """
        raise NoTrackingModeError(
            f"{self.name} is a classical matcher without a tracking mode; track with a "
            "Siamese recipe"
        )

    def _features(self, ref: Any) -> Any:
        if isinstance(ref, self.features_type):
            if ref.recipe != self.name:
                raise InvalidArgumentError(
                    f"reference was encoded by {ref.recipe!r}, not by this {self.name!r} matcher"
                )
            return ref
        return self.encode_reference(check_reference(ref))

    # -- for subclasses ------------------------------------------------------------------

    @abc.abstractmethod
    def _prepare_scene(self, image: np.ndarray) -> Any:
        """Per-scene work shared by every reference matched in it."""

    @abc.abstractmethod
    def _match_features(
        self, feats: Any, prepared: Any, max_instances: int, threshold: float
    ) -> tuple[Instance, ...]:
        """Instances of one encoded reference in a prepared scene, best first."""
