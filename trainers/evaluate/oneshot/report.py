"""The one-shot evaluation report: per-run scores aggregated over runs, as JSON and Markdown.

Every metric is reported per category group (``unseen``, ``seen``) as
``{"mean", "std", "ci95", "runs"}``: the per-run values, their mean, the sample standard
deviation over runs (``ddof=1``; 0 for a single run) and the half-width of a 95 %
confidence interval of the mean, ``1.96 * std / sqrt(runs)``. AP values are fractions in
``[0, 1]`` in JSON and percentages in the Markdown tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainers.evaluate.oneshot.scoring import CocoScores

REPORT_VERSION = 1

#: How this evaluation departs from the original protocol (Siamese Mask R-CNN,
#: ``lib/utils.py::evaluate_dataset``); copied into every report.
DEVIATIONS = (
    "the reference is drawn from another image than the query image (the original protocol "
    "could draw the query image itself, and so the very instance to find)",
    "reference draws are seeded per (seed, run, image, category) and reproducible (the "
    "original runs were unseeded)",
    "references must be non-crowd instances of at least the minimum size on both sides (the "
    "original had no size filter); present pairs with no eligible reference outside the "
    "image are skipped and their ground truth left out of scoring",
    "the matcher receives the whole reference image and the instance box and crops it by its "
    "own template rule (context included), instead of a tight box crop padded to 192x192",
    "detections are kept down to the score floor (not cut at 0.7 confidence), at most "
    "max_instances per query",
    "a category whose only annotations in an image are crowd regions is not queried there",
    "spread: sample std over runs and 1.96*std/sqrt(runs) per split (the original quoted "
    "the CI of the 4-split average)",
    "added beyond the original: the absent-category pass (false positives per image at the "
    "operating threshold) and recall/precision at that threshold; neither changes AP",
)


@dataclass(frozen=True)
class RunScores:
    """Scores of one run and one category group.

    Attributes:
        coco: IoU type (``"bbox"``, ``"segm"``) -> pycocotools scores.
        num_queries: present-pair queries.
        num_images: images with at least one present-pair query.
        absent_false_positives: per absent query, detections at or above the threshold.
        absent_images: images with at least one absent query.
    """

    coco: dict[str, CocoScores]
    num_queries: int
    num_images: int
    absent_false_positives: list[int]
    absent_images: int


def summarize(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample std and 95 % CI half-width of per-run values (``None`` values skipped)."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return {"mean": None, "std": None, "ci95": None, "runs": list(values)}
    std = float(np.std(kept, ddof=1)) if len(kept) > 1 else 0.0
    return {
        "mean": float(np.mean(kept)),
        "std": std,
        "ci95": 1.96 * std / math.sqrt(len(kept)),
        "runs": [None if v is None else float(v) for v in values],
    }


def build_report(
    *,
    dataset: Any,
    plan: Any,
    scores: dict[str, list[RunScores]],
    threshold: float,
    segm_evaluated: bool,
    num_ignored: int,
    source: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The JSON-ready report of an evaluation (see the module docstring for the numbers)."""
    groups = {
        group: _group_report(dataset, plan, group, runs, threshold, segm_evaluated)
        for group, runs in scores.items()
    }
    return {
        "benchmark": "coco-oneshot",
        "version": REPORT_VERSION,
        "annotations": dataset.path,
        "source": source,
        "split": plan.split.to_dict(),
        "settings": {
            "runs": plan.runs,
            "seed": plan.seed,
            "threshold": threshold,
            "absent_per_image": plan.absent_per_image,
            "min_reference_size": plan.rule.min_size,
            "num_images": len(plan.image_ids),
            **settings,
        },
        "protocol": {
            "reference_rule": plan.rule.describe(),
            "reference_draw": (
                "numpy.random.default_rng([seed, run, image_id, tag, x]) per choice: tag 0 / "
                "category id picks a present pair's reference among the category's eligible "
                "instances outside the image (sorted by annotation id); tag 1 / group index "
                "picks the absent categories; tag 2 / category id an absent category's reference"
            ),
            "labels": "every detection is labelled with its reference's category",
            "ap": "pycocotools COCOeval per run and group, catIds = the group's categories; "
            "AP50 = stats[1], AP = stats[0] (area all, 100 detections)",
            "deviations": list(DEVIATIONS),
        },
        "segm_evaluated": segm_evaluated,
        "ignored_detections": num_ignored,
        "groups": groups,
    }


def _group_report(
    dataset: Any,
    plan: Any,
    group: str,
    runs: list[RunScores],
    threshold: float,
    segm_evaluated: bool,
) -> dict[str, Any]:
    categories = plan.split.group(group)
    iou_types = ("bbox", "segm") if segm_evaluated else ("bbox",)
    out: dict[str, Any] = {
        "categories": list(categories),
        "num_images": runs[0].num_images if runs else 0,
        "num_queries": runs[0].num_queries if runs else 0,
        "num_skipped_pairs": len(plan.skipped.get(group, ())),
    }
    for iou_type in ("bbox", "segm"):
        out[iou_type] = (
            {
                "AP50": summarize([r.coco[iou_type].ap50 for r in runs]),
                "AP": summarize([r.coco[iou_type].ap for r in runs]),
            }
            if iou_type in iou_types
            else None
        )
    out["operating_point"] = {
        "threshold": threshold,
        "recall50": summarize([r.coco["bbox"].recall50 for r in runs]),
        "precision50": summarize([r.coco["bbox"].precision50 for r in runs]),
    }
    absent_counts = [len(r.absent_false_positives) for r in runs]
    out["absent"] = (
        {
            "num_references": absent_counts[0],
            "fp_per_image": summarize(
                [sum(r.absent_false_positives) / r.absent_images for r in runs]
            ),
            "fp_per_reference": summarize([float(np.mean(r.absent_false_positives)) for r in runs]),
            "false_alarm_rate": summarize(
                [float(np.mean([n > 0 for n in r.absent_false_positives])) for r in runs]
            ),
        }
        if runs and all(absent_counts)
        else None
    )
    instances = _instance_counts(dataset, plan, group)
    per_category = []
    for cat in categories:
        row: dict[str, Any] = {
            "id": cat,
            "name": dataset.categories[cat],
            "num_instances": instances.get(cat, 0),
        }
        for iou_type in ("bbox", "segm"):
            for index, metric in enumerate(("AP50", "AP")):
                values = [
                    r.coco[iou_type].per_category[cat][index]
                    for r in runs
                    if iou_type in r.coco and cat in r.coco[iou_type].per_category
                ]
                row[f"{iou_type}_{metric}"] = float(np.mean(values)) if values else None
        per_category.append(row)
    out["per_category"] = per_category
    return out


def _instance_counts(dataset: Any, plan: Any, group: str) -> dict[int, int]:
    """Non-crowd ground-truth instances per category over the group's queried pairs."""
    pairs = {
        (q.image_id, q.category_id)
        for q in plan.queries
        if q.group == group and q.run == 0 and not q.absent
    }
    counts: dict[int, int] = {}
    for image_id, cat in pairs:
        anns = dataset.coco.imgToAnns.get(image_id, [])
        counts[cat] = counts.get(cat, 0) + sum(
            1 for a in anns if a["category_id"] == cat and not a["iscrowd"]
        )
    return counts


# -- Markdown ---------------------------------------------------------------------------


def _pct(summary: dict[str, Any] | None, *, spread: bool = True) -> str:
    if not summary or summary.get("mean") is None:
        return "–"
    text = f"{100 * summary['mean']:.1f}"
    return f"{text} ± {100 * summary['std']:.1f}" if spread else text


def _num(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("mean") is None:
        return "–"
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def to_markdown(report: dict[str, Any]) -> str:
    """Markdown tables of a report: the summary per group, then per-category AP."""
    settings = report["settings"]
    source = report.get("source", {})
    what = source.get("recipe") or source.get("detections") or "detections"
    thr = settings["threshold"]
    lines = [
        f"### One-shot evaluation, split {report['split']['name']}: {what}",
        "",
        f"{settings['runs']} run(s), seed {settings['seed']}; AP in %, mean ± std over runs; "
        f"operating threshold {thr:g}. References come from other images than the query "
        "(the original protocol allowed the same image); every deviation is listed under "
        "`protocol.deviations` in the JSON report.",
        "",
        "| classes | categories | queries/run | det AP50 | det AP | segm AP50 | segm AP "
        f"| recall50 @{thr:g} | absent FP/image |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, g in report["groups"].items():
        bbox, segm = g["bbox"], g["segm"] or {}
        absent = g["absent"] or {}
        lines.append(
            f"| {group} | {len(g['categories'])} | {g['num_queries']} "
            f"| {_pct(bbox['AP50'])} | {_pct(bbox['AP'])} "
            f"| {_pct(segm.get('AP50'))} | {_pct(segm.get('AP'))} "
            f"| {_pct(g['operating_point']['recall50'])} | {_num(absent.get('fp_per_image'))} |"
        )
    lines += [
        "",
        "Per-category AP (mean over runs, %):",
        "",
        "| classes | id | category | instances | det AP50 | det AP | segm AP50 | segm AP |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for group, g in report["groups"].items():
        for row in g["per_category"]:
            name = str(row["name"]).replace("|", "/")
            lines.append(
                f"| {group} | {row['id']} | {name} | {row['num_instances']} "
                f"| {_cell(row['bbox_AP50'])} | {_cell(row['bbox_AP'])} "
                f"| {_cell(row['segm_AP50'])} | {_cell(row['segm_AP'])} |"
            )
    return "\n".join(lines) + "\n"
