"""``siammatch track-benchmark``: run a tracker over a tracking benchmark into result files.

One pass (OTB, UAV123, LaSOT, GOT-10k), VOT's supervised protocol (re-initialised 5 frames
after each failure; markers 1/2/0) or VOT-LT's long-term run with confidences, written in
PySOT's result layout under ``--out/<benchmark>/<name>/`` and scored by ``siammatch eval
tracking``. See :mod:`trainers.evaluate.tracking.runner`.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

MAX_WORKERS = 64


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``track-benchmark`` to the ``siammatch`` parser."""
    from api.cli import model_args

    p = sub.add_parser(
        "track-benchmark",
        help="run a tracker over OTB/UAV123/LaSOT/GOT-10k/VOT/VOT-LT into result files",
        description=(
            "Run a tracker over a tracking benchmark — one pass on OTB, UAV123, LaSOT and "
            "GOT-10k; VOT's supervised protocol (re-initialised 5 frames after a failure); "
            "VOT-LT's long-term run with confidences — and write result files in PySOT's "
            "layout under OUT/<benchmark>/<name>/, for `siammatch eval tracking`."
        ),
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="benchmark: OTB100 (OTB2015), UAV123, LaSOT, GOT-10k, VOT2016, VOT2017, VOT2018, "
        "VOT2019, VOT2018-LT",
    )
    p.add_argument("--root", required=True, help="the benchmark's folder (official layout)")
    model_args(
        p,
        recipe_help="recipe name or YAML file (default: the weights' recipe)",
        set_help="recipe override (repeatable)",
    )
    p.add_argument("--out", required=True, help="results root (RESULTS/<benchmark>/<name>/...)")
    p.add_argument("--name", help="tracker name in the results (default: the weights file's stem)")
    p.add_argument("--workers", type=int, default=1, help="processes running sequences (default 1)")
    p.add_argument(
        "--sequences", nargs="+", metavar="SEQ", help="run only these sequences (by name)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_track_benchmark)


def cmd_track_benchmark(args: argparse.Namespace) -> int:
    """Run ``siammatch track-benchmark``; returns the exit status."""
    from api.cli import load_matcher
    from matcher.errors import InvalidArgumentError
    from trainers.evaluate.tracking.datasets import load_dataset
    from trainers.evaluate.tracking.runner import TrackerSpec, run_benchmark

    if not 1 <= args.workers <= MAX_WORKERS:
        raise InvalidArgumentError(f"--workers must be between 1 and {MAX_WORKERS}")
    name = args.name
    if name is not None and not re.fullmatch(r"[A-Za-z0-9._+-]+", name):
        raise InvalidArgumentError(f"--name {name!r}: use letters, digits and . _ + - only")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out {out} exists and is not a folder")
    dataset = load_dataset(args.dataset, args.root)
    if args.sequences:
        dataset = dataset.select(args.sequences)
    m = load_matcher(args)
    m.tracker()  # a matcher without a tracking mode fails here, before any work
    if name is None:
        stem = Path(args.weights).stem if args.weights else str(getattr(m, "name", "tracker"))
        name = re.sub(r"[^A-Za-z0-9._+-]", "_", stem)
    out.mkdir(parents=True, exist_ok=True)
    spec = TrackerSpec(
        recipe=args.recipe,
        weights=args.weights,
        device=args.device,
        overrides=tuple(args.overrides),
    )
    tic = time.perf_counter()
    records = run_benchmark(
        dataset,
        out,
        name=name,
        spec=spec,
        matcher_obj=m,
        workers=args.workers,
        progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - tic
    frames = sum(len(r.regions) for r in records)
    tracked = sum(t for r in records for t in r.times)
    line = (
        f"{name}: {len(records)} sequences, {frames} frames of {dataset.name} in {elapsed:.1f} s "
        f"({frames / tracked if tracked > 0 else 0:.1f} fps tracking)"
    )
    if dataset.benchmark.protocol == "vot":
        line += f", {sum(r.failures for r in records)} failures"
    print(line)
    print(f"results written to {os.path.join(str(out), dataset.name, name)}/")
    return 0
