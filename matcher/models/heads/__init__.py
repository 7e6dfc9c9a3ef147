"""Correlation heads: template and search features in, score maps out.

A head splits its work three ways so that match mode can reuse what does not change:
``encode_template(zf)`` (reference-only, cached per reference), ``encode_search(xf)``
(scene-only, computed once per scene and shared by every reference) and
``correlate(zk, xk)`` (the per-pair part). Template and search encodings are lists of
tensors whose order each head documents; ``correlate`` pairs batches as the ops in
:mod:`matcher.models.heads.xcorr` do and returns a dict of named raw outputs.
"""

from __future__ import annotations

from matcher.models.heads import rpn, siamfc, siamfcpp  # noqa: F401
from matcher.models.heads.registry import HEADS, build_head

__all__ = ["HEADS", "build_head"]
