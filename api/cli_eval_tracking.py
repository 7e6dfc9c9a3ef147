"""``siammatch eval tracking``: score tracker result files on a tracking benchmark, as
PySOT's toolkit does.

OTB/UAV123/LaSOT/GOT-10k: success AUC, precision at 20 px, LaSOT's normalised precision,
GOT-10k's AO/SR0.5/SR0.75 and per-attribute success; VOT2016-2019: accuracy, robustness,
failures and EAO (each year's interval), per tag; VOT2018-LT: precision, recall and F-score.
Prints a Markdown table; ``--output`` adds the benchmark to a JSON report, ``--plots``
writes PySOT-style success/precision (or expected-overlap, precision-recall) PNGs.
See :mod:`trainers.evaluate.tracking.scoring`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_tracking(benchmarks: argparse._SubParsersAction) -> None:
    """The ``eval tracking`` parser."""
    p = benchmarks.add_parser(
        "tracking",
        help="score tracker results on OTB/UAV123/LaSOT/GOT-10k/VOT/VOT-LT (PySOT's toolkit)",
        description=(
            "Score tracker result files on a tracking benchmark as PySOT's toolkit does "
            "(success/precision, normalised precision, AO/SR, VOT accuracy/robustness/EAO, "
            "VOT-LT F-score); print a Markdown table, add the scores to a JSON report and "
            "write PySOT-style plots."
        ),
    )
    p.add_argument("--dataset", required=True, help="benchmark name (e.g. OTB100, VOT2018)")
    p.add_argument("--root", required=True, help="the benchmark's folder")
    p.add_argument("--results", required=True, help="results root (RESULTS/<benchmark>/<tracker>)")
    p.add_argument(
        "--trackers", nargs="+", metavar="NAME", help="trackers to score (names or patterns)"
    )
    p.add_argument("--output", help="JSON report to write (other benchmarks in it are kept)")
    p.add_argument("--markdown", help="write the Markdown tables to this file")
    p.add_argument("--plots", help="folder for the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval_tracking)


def cmd_eval_tracking(args: argparse.Namespace) -> int:
    """Run ``siammatch eval tracking``; returns the exit status."""
    from matcher.errors import InvalidArgumentError
    from trainers.evaluate.tracking.datasets import load_dataset
    from trainers.evaluate.tracking.plots import write_plots
    from trainers.evaluate.tracking.report import merge_report, to_markdown
    from trainers.evaluate.tracking.scoring import score_trackers

    for flag, path in (("--output", args.output), ("--markdown", args.markdown)):
        if path is None:
            continue
        parent = Path(path).absolute().parent
        if not parent.is_dir():
            raise InvalidArgumentError(f"{flag} {path}: folder {parent} does not exist")
        if Path(path).is_dir():
            raise InvalidArgumentError(f"{flag} {path} is a folder")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        raise InvalidArgumentError(f"--plots {args.plots} exists and is not a folder")
    dataset = load_dataset(args.dataset, args.root)
    report = score_trackers(dataset, args.results, args.trackers, progress=not args.no_progress)
    markdown = to_markdown(report)
    print(markdown, end="")
    if args.output:
        merge_report(args.output, report)
        print(f"report written to {args.output}")
    if args.markdown:
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    if args.plots:
        for path in write_plots(report, args.plots):
            print(f"plot written to {path}")
    return 0
