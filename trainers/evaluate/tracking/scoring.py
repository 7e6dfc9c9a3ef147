"""Scoring trackers' result files on a benchmark: the report behind ``siammatch eval
tracking``.

:func:`score_trackers` reads every tracker's results (:mod:`.results`), computes the
protocol's scores (:mod:`.ope`, :mod:`.vot`, :mod:`.longterm`) and returns a plain,
JSON-ready dict::

    {"benchmark": "VOT2018", "protocol": "vot", "sequences": 60, "frames": 21356,
     "eao_interval": [100, 356],
     "trackers": {"siamrpn": {"accuracy": ..., "robustness": ..., "failures": ...,
                             "eao": ..., "attributes": {"occlusion": {"eao": ...}},
                             "curves": {...}, "sequences": {...}}}}

Score keys per protocol: OPE ``success_auc``, ``precision`` (at 20 px), LaSOT also
``norm_precision``, GOT-10k also ``ao``, ``sr50``, ``sr75``; VOT ``accuracy``,
``robustness``, ``failures``, ``eao``; VOT-LT ``lt_precision``, ``lt_recall``, ``lt_f1``.
Region overlaps of all sequences are computed in one vectorised pass per tracker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from trainers.evaluate.tracking import longterm, ope, vot
from trainers.evaluate.tracking import results as res
from trainers.evaluate.tracking.datasets import VOT_TAGS, TrackingDataset
from trainers.evaluate.tracking.region import Regions, vot_overlaps, vot_overlaps_both_bounds

logger = logging.getLogger(__name__)

#: VOT attribute tags scored by EAO: PySOT's five, and the frames carrying none of them.
EAO_TAGS = ("all", *VOT_TAGS, "empty")


def score_trackers(
    dataset: TrackingDataset,
    results: str | Path,
    trackers: Iterable[str] | None = None,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Score the trackers with results for ``dataset``'s benchmark under ``results``.

    Args:
        dataset: the benchmark's sequences.
        results: the results root (``results/<benchmark>/<tracker>/...``).
        trackers: tracker names or shell patterns; ``None``: every tracker found.
        progress: show a tqdm bar over trackers.

    Returns:
        The report (see the module docstring).

    Raises:
        TrackingResultsError: missing or malformed result files (named).
        DatasetLayoutError: a frame needed for the image size cannot be read.
    """
    bench = dataset.benchmark
    names = res.list_trackers(Path(results), bench, trackers)
    report: dict[str, Any] = {
        "benchmark": bench.name,
        "protocol": bench.protocol,
        "root": str(dataset.root),
        "source": dataset.source,
        "sequences": len(dataset),
        "frames": dataset.num_frames,
    }
    if bench.eao_interval is not None:
        report["eao_interval"] = list(bench.eao_interval)
    scorer = {"ope": _score_ope, "vot": _score_vot, "vot-lt": _score_lt}[bench.protocol]
    scored = {}
    for name in tqdm(names, desc=f"scoring {bench.name}", unit="tracker", disable=not progress):
        scored[name] = scorer(dataset, res.tracker_dir(Path(results), bench, name))
    report["trackers"] = scored
    return report


# -- one-pass evaluation -------------------------------------------------------------------


def _score_ope(dataset: TrackingDataset, folder: Path) -> dict[str, Any]:
    bench = dataset.benchmark
    curves: dict[str, ope.OPECurves] = {}
    got_ious = []
    for seq in dataset.sequences:
        runs = res.read_boxes(folder, bench, seq.name, length=len(seq))
        curves[seq.name] = ope.sequence_curves(seq.gt, runs[0], seq.visible)
        if bench.layout == "got10k":
            size = seq.size()
            got_ious.extend(
                ope.got10k_ious(seq.gt, run, size=size, visible=seq.visible) for run in runs
            )
    out = _ope_summary(list(curves.values()), norm=bench.layout == "lasot")
    if bench.layout == "got10k":
        got = ope.got10k_scores(np.concatenate(got_ious))
        out.update(ao=got.ao, sr50=got.sr50, sr75=got.sr75)
        out["curves"]["got10k_success"] = got.curve.tolist()
    attributes = dataset.attributes()
    if attributes:
        out["attributes"] = {
            attr: {
                k: v
                for k, v in _ope_summary([curves[n] for n in seqs], norm=False).items()
                if k != "curves"
            }
            | {"sequences": len(seqs)}
            for attr, seqs in attributes.items()
        }
    out["sequences"] = {
        name: {
            "success_auc": float(np.mean(c.success)),
            "precision": float(c.precision[ope.REPORT_INDEX]),
        }
        for name, c in curves.items()
    }
    return out


def _ope_summary(curves: list[ope.OPECurves], *, norm: bool) -> dict[str, Any]:
    success = np.array([c.success for c in curves])
    precision = np.mean([c.precision for c in curves], axis=0)
    out: dict[str, Any] = {
        "success_auc": float(np.mean(success)),
        "precision": float(precision[ope.REPORT_INDEX]),
    }
    curve_data = {"success": np.mean(success, axis=0).tolist(), "precision": precision.tolist()}
    if norm:
        norm_precision = np.mean([c.norm_precision for c in curves], axis=0)
        out["norm_precision"] = float(norm_precision[ope.REPORT_INDEX])
        curve_data["norm_precision"] = norm_precision.tolist()
    out["curves"] = curve_data
    return out


# -- VOT supervised ------------------------------------------------------------------------


def _score_vot(dataset: TrackingDataset, folder: Path) -> dict[str, Any]:
    preds, gts, sizes, spans = [], [], [], []
    for seq in dataset.sequences:
        gt = Regions.from_array(seq.gt)
        size = seq.size()
        tags = {**seq.tags, "empty": _empty_tag(seq.tags, len(seq))}
        for run in res.read_vot_runs(folder, seq.name, len(seq)):
            n = min(len(run), len(gt))
            preds.append(run[:n])
            gts.append(gt[:n])
            sizes.append(np.broadcast_to(np.asarray(size, np.float64), (n, 2)))
            spans.append((seq, run, tags))
    pred_all, gt_all = _concat(preds), _concat(gts)
    full, shrunk = vot_overlaps_both_bounds(pred_all, gt_all, np.concatenate(sizes))
    runs: dict[str, list[vot.RunOverlaps]] = {}
    start = 0
    for (seq, run, tags), piece in zip(spans, preds, strict=True):
        stop = start + len(piece)
        runs.setdefault(seq.name, []).append(
            vot.RunOverlaps(seq.name, run, full[start:stop], shrunk[start:stop], len(seq), tags)
        )
        start = stop
    ar = vot.accuracy_robustness(runs)
    interval = dataset.benchmark.eao_interval or (1, 1)
    curves = {tag: vot.eao_curve(runs, tag) for tag in EAO_TAGS}
    return {
        "accuracy": ar.accuracy,
        "robustness": ar.robustness,
        "failures": ar.failures,
        "eao": vot.eao_score(curves["all"], interval),
        "attributes": {tag: {"eao": vot.eao_score(curves[tag], interval)} for tag in EAO_TAGS[1:]},
        "curves": {"expected_overlap": curves["all"].astype(np.float64).tolist()},
        "sequences": {
            name: {"accuracy": acc, "failures": fails}
            for name, (acc, fails) in ar.per_sequence.items()
        },
    }


def _empty_tag(tags: dict[str, np.ndarray], length: int) -> np.ndarray:
    """Frames carrying none of the VOT tags (PySOT's own ``empty`` tag is malformed)."""
    if not tags:
        return np.ones(length, np.int64)
    return (np.sum([t[:length] for t in tags.values()], axis=0) == 0).astype(np.int64)


def _concat(parts: list[Regions]) -> Regions:
    width = max(p.values.shape[1] for p in parts)
    values = np.concatenate(
        [np.pad(p.values, ((0, 0), (0, width - p.values.shape[1])), constant_values=np.nan)
         for p in parts]
    )  # fmt: skip
    return Regions(values, np.concatenate([p.lengths for p in parts]))


# -- VOT long-term -------------------------------------------------------------------------


def _score_lt(dataset: TrackingDataset, folder: Path) -> dict[str, Any]:
    preds, gts, sizes, parts = [], [], [], []
    for seq in dataset.sequences:
        pred, scores = res.read_vot_lt(folder, seq.name, len(seq))
        preds.append(pred)
        gts.append(Regions.from_array(seq.gt, nan_is_special=True))
        sizes.append(np.broadcast_to(np.asarray(seq.size(), np.float64), (len(seq), 2)))
        parts.append((seq, scores))
    overlaps = vot_overlaps(_concat(preds), _concat(gts), np.concatenate(sizes))
    sequences = []
    start = 0
    for seq, scores in parts:
        stop = start + len(seq)
        visible = int(np.sum(~np.isnan(seq.gt[:, 0])))
        sequences.append((seq.name, overlaps[start:stop], scores, visible))
        start = stop
    lt = longterm.f_scores(sequences)
    return {
        "lt_precision": lt.precision,
        "lt_recall": lt.recall,
        "lt_f1": lt.f1,
        "curves": {"precision": lt.precision_curve.tolist(), "recall": lt.recall_curve.tolist()},
        "sequences": {
            name: {"lt_precision": p, "lt_recall": r, "lt_f1": f}
            for name, (p, r, f) in lt.per_sequence.items()
        },
    }
