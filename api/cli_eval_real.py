"""``siammatch eval pairs --set real``: several matchers on a split of the real-photo set.

The protocol is :mod:`trainers.evaluate.real_protocol`: every trial of the split is matched
once at score threshold 0 and scored at each matcher's operating threshold; the metrics are
aggregated by :mod:`trainers.evaluate.real_summary`. The set is ``--data`` (a folder with
``annotations.json``) or the one built from ``--seed`` under ``var/eval/real-seed<seed>``
(:func:`trainers.evaluate.real_set.build_real_set`, which keeps a set already there). The ``test``
split is for evaluation, ``val`` for calibration (the JSON report keeps every trial's top
score and IoU so that a calibration can be fitted from it); ``train`` is refused.

Everything is checked before matching: the arguments, the output paths, the matchers, the
set's document and every scene and reference file of the split. Like
:mod:`api.cli_eval_pairs`, this module imports nothing heavy at the top.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import time
from pathlib import Path
from typing import Any

from api.cli_eval_pairs import (
    DEFAULT_DATA_ROOT,
    DEFAULT_REAL_SEED,
    _check_output,
    _load_matchers,
)

logger = logging.getLogger(__name__)

#: Splits that may be evaluated: ``test`` (evaluation) and ``val`` (calibration); never
#: ``train``.
EVAL_SPLITS = ("test", "val")


def _check_args(args: argparse.Namespace) -> tuple[str, int]:
    """Validate the real-set arguments; returns ``(split, seed)``."""
    from api.cli import UsageError

    for flag, value in (
        ("--scenes", args.scenes),
        ("--products", args.products),
        ("--workers", args.workers),
    ):
        if value is not None:
            raise UsageError(f"{flag} applies to --set synthetic only")
    split = "test" if args.split is None else args.split
    if split == "train":
        raise UsageError(
            "--split train is refused: the train split is not for evaluation; use "
            "--split test (evaluation) or --split val (calibration)"
        )
    if split not in EVAL_SPLITS:
        raise UsageError(f"--split must be test or val, got {split!r}")
    if args.data is not None and args.seed is not None:
        raise UsageError(
            "--seed chooses the real-photo set to build; it does not apply with --data"
        )
    seed = DEFAULT_REAL_SEED if args.seed is None else args.seed
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    _check_output(args.output, "--output")
    _check_output(args.markdown, "--markdown")
    _check_output(args.reliability, "--reliability")
    if args.reliability is not None and Path(args.reliability).suffix.lower() != ".png":
        raise UsageError(f"--reliability {args.reliability}: give a .png file")
    if args.data is not None:
        root = Path(args.data)
        if not root.is_dir():
            raise UsageError(f"--data {args.data}: no such folder")
        if not (root / "annotations.json").is_file():
            raise UsageError(f"--data {args.data}: no annotations.json there")
    return split, seed


def _ensure_real_set(root: Path, seed: int) -> Path:
    """The real-photo set of ``seed`` at ``root``: built there, or kept as it is when the
    builder finds the same set already there; returns ``root``."""
    from trainers.evaluate.real_set import build_real_set

    logger.info("real-photo set of seed %d under %s", seed, root)
    build_real_set(root, seed=seed, progress=True)
    return root


def cmd_eval_pairs_real(args: argparse.Namespace) -> int:
    """Run ``siammatch eval pairs --set real`` (see the module docstring)."""
    from trainers.evaluate import real_protocol as protocol
    from trainers.evaluate.real_summary import markdown_real, summarise_real

    split, seed = _check_args(args)
    matchers = _load_matchers(args)
    root = (
        Path(args.data)
        if args.data
        else _ensure_real_set(DEFAULT_DATA_ROOT / f"real-seed{seed}", seed)
    )
    document = protocol.load_real_document(root)
    trials = protocol.real_trials(document, split)
    references = protocol.load_references(trials, root)

    summaries, rows = [], []
    for spec, m in matchers:
        threshold = m.score_threshold
        answers = protocol.run_real_trials(m, trials, references, root=root, progress=True)
        outcomes = [
            protocol.score_answer(t, a, threshold=threshold)
            for t, a in zip(trials, answers, strict=True)
        ]
        summary = summarise_real(m.name, outcomes, threshold=threshold)
        summaries.append(summary)
        rows.append(
            {"spec": spec, **summary.to_dict(), "records": [o.to_record() for o in outcomes]}
        )
    table = markdown_real(summaries)
    print(table, end="")
    info = document.get("info", {}) if isinstance(document.get("info"), dict) else {}
    report = {
        "protocol": "siammatch eval pairs --set real",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": str(root),
        "set": {key: info.get(key) for key in ("name", "version", "seed")},
        "split": split,
        "max_instances": protocol.MAX_INSTANCES,
        "trials": {
            "present": sum(t.present for t in trials),
            "absent": sum(not t.present for t in trials),
            "by_category": dict(sorted(collections.Counter(t.category for t in trials).items())),
        },
        "matchers": rows,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.reliability:
        _write_reliability(args.reliability, summaries)
    return 0


def _write_reliability(path: str, summaries: list[Any]) -> None:
    from PIL import Image

    from trainers.evaluate.reliability_diagram import draw_reliability_diagram

    curves = [
        (f"{s.matcher} (ECE {'-' if s.ece is None else f'{s.ece:.3f}'})", s.reliability)
        for s in summaries
    ]
    Image.fromarray(draw_reliability_diagram(curves)).save(path)
