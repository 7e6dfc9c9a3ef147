"""The metrics of one matcher on a real-photo set, and their Markdown tables.

:func:`summarise_real` aggregates the scored trials of :mod:`trainers.evaluate.real_protocol`
(whose docstring defines each metric) into a :class:`RealSummary`; :func:`markdown_real`
writes one summary row per matcher, then the success rate per present category and the
false-positive rate per absent category (one column per category that has trials).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainers.evaluate.calibration import (
    ReliabilityBin,
    auroc,
    expected_calibration_error,
    reliability_bins,
)
from trainers.evaluate.real_protocol import (
    ABSENT_CATEGORIES,
    PRESENT_CATEGORIES,
    SEVERAL,
    RealOutcome,
)


@dataclass(frozen=True)
class RealSummary:
    """The metrics of one matcher (see :mod:`trainers.evaluate.real_protocol`).

    Attributes:
        matcher: its name.
        threshold: the operating score threshold the threshold-bound metrics use.
        success_rate / mean_iou: present trials (``None`` without any).
        instance_recall: ``several`` trials (``None`` without any).
        fp_rate: absent trials (``None`` without any).
        auroc: present vs absent by top score (``None`` without both kinds).
        ece: expected calibration error of the top score (``None`` without trials).
        mask_iou: mean top-instance mask IoU (``None`` when no mask was compared).
        latency_ms: median ``match`` time.
        num_present / num_absent: trials.
        success_by_category / fp_by_category: per present / absent category.
        reliability: the ECE's bins.
    """

    matcher: str
    threshold: float
    success_rate: float | None
    mean_iou: float | None
    instance_recall: float | None
    fp_rate: float | None
    auroc: float | None
    ece: float | None
    mask_iou: float | None
    latency_ms: float
    num_present: int
    num_absent: int
    success_by_category: dict[str, float] = field(default_factory=dict)
    fp_by_category: dict[str, float] = field(default_factory=dict)
    reliability: tuple[ReliabilityBin, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (rates rounded to 4 decimals, latency to 0.1 ms)."""

        def r(v: float | None, n: int = 4) -> float | None:
            return None if v is None else round(float(v), n)

        return {
            "matcher": self.matcher,
            "threshold": r(self.threshold, 6),
            "success_rate": r(self.success_rate),
            "mean_iou": r(self.mean_iou),
            "instance_recall": r(self.instance_recall),
            "fp_rate": r(self.fp_rate),
            "auroc": r(self.auroc),
            "ece": r(self.ece),
            "mask_iou": r(self.mask_iou),
            "latency_ms": r(self.latency_ms, 1),
            "num_present": self.num_present,
            "num_absent": self.num_absent,
            "success_by_category": {k: r(v) for k, v in self.success_by_category.items()},
            "fp_rate_by_category": {k: r(v) for k, v in self.fp_by_category.items()},
            "reliability": [b.to_dict() for b in self.reliability],
        }


def ordered_categories(names: Iterable[str], canonical: Sequence[str]) -> list[str]:
    """``names`` in the canonical order, unknown ones after it, alphabetically."""
    names = set(names)
    return [c for c in canonical if c in names] + sorted(names - set(canonical))


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def summarise_real(name: str, outcomes: Sequence[RealOutcome], *, threshold: float) -> RealSummary:
    """Aggregate scored trials (all scored at ``threshold``) into a :class:`RealSummary`."""
    present = [o for o in outcomes if o.present]
    absent = [o for o in outcomes if not o.present]
    several = [o for o in present if o.category == SEVERAL]
    num_truth = sum(o.num_gt for o in several)
    masks = [o for o in present if o.mask_iou is not None]
    scores = [o.top_score for o in outcomes]
    labels = [o.correct for o in outcomes]
    success_by_category = {
        c: float(np.mean([o.success for o in present if o.category == c]))
        for c in ordered_categories((o.category for o in present), PRESENT_CATEGORIES)
    }
    fp_by_category = {
        c: float(np.mean([o.found for o in absent if o.category == c]))
        for c in ordered_categories((o.category for o in absent), ABSENT_CATEGORIES)
    }
    return RealSummary(
        matcher=name,
        threshold=float(threshold),
        success_rate=_mean([o.success for o in present]),
        mean_iou=_mean([o.iou if o.found else 0.0 for o in present]),
        instance_recall=sum(o.num_matched for o in several) / num_truth if num_truth else None,
        fp_rate=_mean([o.found for o in absent]),
        auroc=auroc(scores, [o.present for o in outcomes]),
        ece=expected_calibration_error(scores, labels),
        mask_iou=(
            _mean([(o.mask_iou or 0.0) if o.found else 0.0 for o in present]) if masks else None
        ),
        latency_ms=float(np.median([o.latency_ms for o in outcomes])) if outcomes else 0.0,
        num_present=len(present),
        num_absent=len(absent),
        success_by_category=success_by_category,
        fp_by_category=fp_by_category,
        reliability=tuple(reliability_bins(scores, labels)),
    )


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _category_table(rows: Sequence[tuple[str, dict[str, float]]], canonical: Sequence[str]) -> str:
    columns = ordered_categories((c for _, values in rows for c in values), canonical)
    if not columns:
        return ""
    lines = [
        "| matcher | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(_cell(values.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def markdown_real(summaries: Sequence[RealSummary]) -> str:
    """The summaries as Markdown: the main table, then the per-category tables."""
    lines = [
        "| matcher | threshold | success@0.5 | mean IoU | instance recall (several) | "
        "FP rate (absent) | AUROC | ECE | median ms/match |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.matcher} | {s.threshold:.3f} | {_cell(s.success_rate)} | {_cell(s.mean_iou)} "
            f"| {_cell(s.instance_recall)} | {_cell(s.fp_rate)} | {_cell(s.auroc)} "
            f"| {_cell(s.ece)} | {s.latency_ms:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    success = _category_table(
        [(s.matcher, s.success_by_category) for s in summaries], PRESENT_CATEGORIES
    )
    if success:
        text += "\nSuccess@0.5 per category (present trials)\n\n" + success
    fp = _category_table([(s.matcher, s.fp_by_category) for s in summaries], ABSENT_CATEGORIES)
    if fp:
        text += "\nFalse-positive rate per category (absent trials)\n\n" + fp
    return text
