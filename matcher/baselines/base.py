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
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import yaml

from matcher.checks import as_float, as_int
from matcher.errors import ConfigError, InvalidArgumentError, NoTrackingModeError
from matcher.images import ImageLike, load_image
from matcher.interface import Matcher, resolve_match_limits
from matcher.structures import Instance, MatchResult, Reference

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
    if tp is str and isinstance(value, str):
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
