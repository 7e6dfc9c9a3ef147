"""The tracking report as Markdown (for RESULTS.md) and as one JSON file across benchmarks.

The JSON file (``--output report.json``) maps each benchmark to its report
(:func:`~.scoring.score_trackers`); scoring another benchmark into the same file adds or
replaces that benchmark's entry and keeps the others, so ``report["VOT2018"]["trackers"]
["siamrpn"]["eao"]`` and ``report["OTB100"]["trackers"]["siamrpn"]["success_auc"]`` sit
side by side.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from matcher.errors import InvalidArgumentError

#: Columns per protocol: (report key, header).
_COLUMNS = {
    "ope": (("success_auc", "success AUC"), ("precision", "precision@20px")),
    "vot": (
        ("accuracy", "accuracy"),
        ("robustness", "robustness"),
        ("failures", "failures"),
        ("eao", "EAO"),
    ),
    "vot-lt": (("lt_precision", "precision"), ("lt_recall", "recall"), ("lt_f1", "F-score")),
}
_EXTRA = (
    ("norm_precision", "norm. precision"),
    ("ao", "AO"),
    ("sr50", "SR0.5"),
    ("sr75", "SR0.75"),
)
_RANK = {"ope": "success_auc", "vot": "eao", "vot-lt": "lt_f1"}


def _cell(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.1f}" if key == "failures" else f"{value:.3f}"


def to_markdown(report: dict[str, Any]) -> str:
    """Markdown tables of one benchmark report: the scores (best first), then the
    per-attribute scores where the benchmark has attributes or tags."""
    protocol = report["protocol"]
    trackers: dict[str, dict[str, Any]] = report["trackers"]
    columns = list(_COLUMNS[protocol])
    columns += [c for c in _EXTRA if any(c[0] in t for t in trackers.values())]
    rank = _RANK[protocol]
    order = sorted(trackers, key=lambda n: -_num(trackers[n].get(rank)))
    title = f"### {report['benchmark']} ({report['sequences']} sequences, {report['frames']} frames"
    if "eao_interval" in report:
        low, high = report["eao_interval"]
        title += f"; EAO over lengths {low}-{high}"
    lines = [title + ")", "", "| tracker | " + " | ".join(h for _, h in columns) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    for name in order:
        cells = " | ".join(_cell(trackers[name].get(k), k) for k, _ in columns)
        lines.append(f"| {name} | {cells} |")
    attributes = sorted({a for t in trackers.values() for a in t.get("attributes", {})})
    if attributes:
        key = "eao" if protocol == "vot" else "success_auc"
        label = "EAO per tag" if protocol == "vot" else "success AUC per attribute"
        lines += ["", f"{label}:", "", "| tracker | " + " | ".join(attributes) + " |"]
        lines.append("|---|" + "---:|" * len(attributes))
        for name in order:
            per = trackers[name].get("attributes", {})
            cells = " | ".join(_cell(per.get(a, {}).get(key), key) for a in attributes)
            lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(value) else value


def merge_report(path: str | Path, report: dict[str, Any]) -> dict[str, Any]:
    """Add (or replace) ``report``'s benchmark in the JSON file at ``path`` and write it
    atomically.

    Returns:
        The whole file's content.

    Raises:
        InvalidArgumentError: ``path`` exists but is not a tracking report.
    """
    path = Path(path)
    document: dict[str, Any] = {}
    if path.exists():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArgumentError(f"cannot add to {path}: {exc}") from None
        if not isinstance(document, dict) or not all(
            isinstance(v, dict) and "trackers" in v for v in document.values()
        ):
            raise InvalidArgumentError(f"{path} is not a tracking report; refusing to replace it")
    document[report["benchmark"]] = _json_ready(report)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=1, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return document


def _json_ready(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN/inf as ``null`` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
