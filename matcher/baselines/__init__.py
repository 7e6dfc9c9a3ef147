"""Classical matchers, the yardstick for the Siamese ones: SIFT + RANSAC and template matching.

They share the Siamese matchers' interface (``name``, ``encode_reference``, ``match``,
``match_many``), need no weights, and are built by name::

    import matcher
    m = matcher.load("baseline_sift")                        # or "baseline_template"
    m = matcher.load("baseline_template", overrides=["scale_step=1.05"])

:data:`BASELINES` maps each name to its matcher class and parameter dataclass; overrides
name the fields of that dataclass (:class:`~matcher.baselines.sift.SiftParams`,
:class:`~matcher.baselines.template.TemplateParams`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from matcher.baselines.base import BaselineMatcher, apply_overrides
from matcher.baselines.sift import SiftMatcher, SiftParams
from matcher.baselines.template import TemplateMatcher, TemplateParams
from matcher.registry import Registry

BASELINES: Registry[Callable[..., BaselineMatcher]] = Registry("baseline matcher")


@BASELINES.register("baseline_sift")
def build_sift(overrides: Sequence[str] | None = None) -> SiftMatcher:
    """SIFT features, ratio test and RANSAC homographies (:mod:`matcher.baselines.sift`)."""
    return SiftMatcher(apply_overrides(SiftParams(), overrides, what="baseline_sift"))


@BASELINES.register("baseline_template")
def build_template(overrides: Sequence[str] | None = None) -> TemplateMatcher:
    """Multi-scale normalised cross-correlation (:mod:`matcher.baselines.template`)."""
    return TemplateMatcher(apply_overrides(TemplateParams(), overrides, what="baseline_template"))


def list_baselines() -> list[str]:
    """Names of the classical matchers (valid for :func:`matcher.load`)."""
    return BASELINES.names()


def build_baseline(name: str, *, overrides: Sequence[str] | None = None) -> BaselineMatcher:
    """The classical matcher called ``name``.

    Raises:
        UnknownComponentError: no baseline of that name (the message lists them).
        ConfigError: a malformed or unknown override, or a value out of range.
    """
    return BASELINES.get(name)(overrides)


__all__ = [
    "BASELINES",
    "BaselineMatcher",
    "SiftMatcher",
    "SiftParams",
    "TemplateMatcher",
    "TemplateParams",
    "build_baseline",
    "list_baselines",
]
