"""``siammatch eval``: benchmark evaluations, one sub-command per benchmark.

``siammatch eval coco-oneshot`` runs the MS-COCO one-shot protocol (the four class splits,
seen vs unseen, seeded references from other images, pycocotools AP50/AP for boxes and
masks, mean and spread over runs, plus an absent-category pass) for a matcher recipe or a
precomputed detections file, on COCO itself (``--split 1..4``) or on any COCO-format set
with a split file (``--split-file``). See :mod:`trainers.evaluate.oneshot`.

:func:`register` adds the ``eval`` parser to the ``siammatch`` command line; each benchmark
is added by one function of :data:`EVAL_COMMANDS` taking the ``eval`` sub-parsers object,
so a new benchmark is one more ``add_...`` function in that tuple. Heavy imports (torch,
pycocotools) stay inside the command functions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: Fallback operating threshold when the matcher's recipe does not name one.
DEFAULT_THRESHOLD = 0.5
#: Runs of the protocol when a matcher is evaluated and ``--runs`` is not given.
DEFAULT_RUNS = 5


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` and its benchmark sub-commands to the ``siammatch`` parser.

    An ``eval`` parser that another module registered already is reused, so the order of
    ``api.cli.COMMAND_MODULES`` does not matter.
    """
    parent = sub.choices.get("eval")
    if parent is None:
        parent = sub.add_parser(
            "eval",
            help="evaluate a matcher or detections on a benchmark",
            description="Evaluate a matcher recipe or precomputed detections on a benchmark.",
        )
    benchmarks = next(
        (a for a in parent._actions if isinstance(a, argparse._SubParsersAction)), None
    )
    if benchmarks is None:
        benchmarks = parent.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for add in EVAL_COMMANDS:
        add(benchmarks)


# -- coco-oneshot -----------------------------------------------------------------------


def add_coco_oneshot(benchmarks: argparse._SubParsersAction) -> None:
    """The ``eval coco-oneshot`` parser."""
    from api.cli import model_args

    p = benchmarks.add_parser(
        "coco-oneshot",
        help="one-shot detection/segmentation on COCO-format data (4 class splits)",
        description=(
            "One-shot COCO protocol: for each image and each evaluated category present in "
            "it, a reference instance drawn (seeded) from another image; AP50/AP for boxes "
            "and masks per class group, mean and spread over runs; plus an absent-category "
            "pass (false positives per image at the operating threshold)."
        ),
    )
    data = p.add_argument_group("data")
    data.add_argument("--ann", required=True, help="COCO annotation file (instances_val2017.json)")
    data.add_argument(
        "--images",
        help="image folder (default: the annotation file's info.images_dir, synthetic sets)",
    )
    split = data.add_mutually_exclusive_group(required=True)
    split.add_argument("--split", type=int, choices=(1, 2, 3, 4), help="COCO class split")
    split.add_argument(
        "--split-file", help='JSON {"unseen": [category ids], "seen": [category ids]}'
    )
    data.add_argument(
        "--classes",
        choices=("both", "unseen", "seen"),
        default="both",
        help="category groups to evaluate (default both)",
    )
    data.add_argument("--max-images", type=int, help="evaluate only the first N images (by id)")
    proto = p.add_argument_group("protocol")
    proto.add_argument(
        "--runs",
        type=int,
        help=f"runs (reference draws); default {DEFAULT_RUNS}, or the runs of --detections",
    )
    proto.add_argument("--seed", type=int, default=0, help="seed of the reference draw")
    proto.add_argument(
        "--min-ref-size",
        type=float,
        default=16.0,
        help="smallest box side (px) of a reference instance (default 16)",
    )
    proto.add_argument(
        "--absent-per-image",
        type=int,
        default=1,
        help="absent categories queried per image and group (default 1; 0 disables)",
    )
    proto.add_argument(
        "--threshold",
        type=float,
        help="operating score threshold (default: the recipe's match threshold, else 0.5)",
    )
    model = p.add_argument_group("source: a matcher or a detections file")
    model_args(
        model, recipe_help="recipe name or YAML file", set_help="recipe override (repeatable)"
    )
    model.add_argument("--max-instances", type=int, default=100, help="instances per query")
    model.add_argument(
        "--score-floor",
        type=float,
        default=0.05,
        help="lowest score a matcher keeps for AP (default 0.05)",
    )
    model.add_argument("--detections", help="precomputed detections (COCO results + run)")
    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", help="write the JSON report here")
    out.add_argument("--markdown", help="write the Markdown tables here")
    out.add_argument("--export-references", help="write the reference draw (JSON) here")
    out.add_argument("--export-detections", help="write the matcher's detections here")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_coco_oneshot)


def cmd_coco_oneshot(args: argparse.Namespace) -> int:
    """Run ``eval coco-oneshot``; returns the exit status."""
    from matcher.errors import InvalidArgumentError
    from trainers.evaluate.oneshot.data import load_dataset
    from trainers.evaluate.oneshot.detections import (
        detections_from_records,
        read_detection_records,
        runs_in_records,
    )
    from trainers.evaluate.oneshot.protocol import evaluate, run_matcher
    from trainers.evaluate.oneshot.queries import ReferenceRule, draw_queries
    from trainers.evaluate.oneshot.report import to_markdown
    from trainers.evaluate.oneshot.splits import GROUPS, coco_split, load_split_file

    uses_matcher = bool(args.recipe or args.weights)
    if uses_matcher and args.detections:
        raise InvalidArgumentError("give either --recipe/--weights or --detections, not both")
    if not uses_matcher and not args.detections and not args.export_references:
        raise InvalidArgumentError(
            "give a matcher (--recipe/--weights), a detections file (--detections) "
            "or --export-references"
        )
    if args.export_detections and not uses_matcher:
        raise InvalidArgumentError("--export-detections needs a matcher (--recipe/--weights)")
    _check_args(args)
    for path in (args.output, args.markdown, args.export_references, args.export_detections):
        _check_output(path)
    if args.weights is not None and not os.path.isfile(args.weights):
        raise InvalidArgumentError(f"weights file {args.weights!r} does not exist")

    dataset = load_dataset(args.ann)
    if args.split is not None:
        split = coco_split(args.split, dataset.categories)
    else:
        split = load_split_file(args.split_file, dataset.categories)
    groups = GROUPS if args.classes == "both" else (args.classes,)
    groups = tuple(g for g in groups if split.group(g))
    if not groups:
        raise InvalidArgumentError(f"split {split.name} has no {args.classes} categories")
    matcher_obj, images_dir = None, None
    if uses_matcher:
        images_dir = args.images or dataset.images_dir
        if images_dir is None:
            raise InvalidArgumentError("--images is required (the image folder)")
        if not os.path.isdir(images_dir):
            raise InvalidArgumentError(f"images folder {images_dir!r} does not exist")
        matcher_obj = _load_matcher(args)
    records = read_detection_records(args.detections) if args.detections else None
    runs = args.runs
    if runs is None:
        runs = runs_in_records(records) if records is not None else DEFAULT_RUNS
    image_ids = sorted(dataset.images)
    if args.max_images is not None:
        image_ids = image_ids[: args.max_images]
    plan = draw_queries(
        dataset,
        split,
        runs=runs,
        seed=args.seed,
        groups=groups,
        rule=ReferenceRule(min_size=args.min_ref_size),
        absent_per_image=args.absent_per_image,
        image_ids=image_ids,
    )
    if args.export_references:
        _write_json(args.export_references, plan.to_dict(dataset))
        if matcher_obj is None and records is None:
            print(f"{len(plan.queries)} queries written to {args.export_references}")
            return 0

    settings: dict[str, Any] = {"classes": args.classes}
    if matcher_obj is None:
        detections = detections_from_records(records, dataset, plan, name=args.detections)
        threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
        source: dict[str, Any] = {"kind": "detections", "detections": args.detections}
    else:
        threshold = matcher_obj.score_threshold if args.threshold is None else args.threshold
        floor = min(args.score_floor, threshold)
        detections = run_matcher(
            matcher_obj,
            dataset,
            plan,
            images_dir=images_dir,
            max_instances=args.max_instances,
            score_threshold=floor,
            progress=not args.no_progress,
        )
        if args.export_detections:
            detections.write(args.export_detections)
        source = {
            "kind": "matcher",
            "recipe": matcher_obj.name,
            "weights": args.weights,
            "device": args.device,
            "overrides": list(args.overrides),
        }
        settings.update(max_instances=args.max_instances, score_floor=floor)
    report = evaluate(
        dataset, plan, detections, threshold=threshold, source=source, settings=settings
    )
    markdown = to_markdown(report)
    print(markdown, end="")
    if args.output:
        _write_json(args.output, report)
        print(f"report written to {args.output}")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(markdown)
    return 0


def _check_args(args: argparse.Namespace) -> None:
    from matcher.errors import InvalidArgumentError

    checks = [
        ("--runs", args.runs, 1, 1000, args.runs is not None),
        ("--seed", args.seed, 0, 2**63 - 1, True),
        ("--max-images", args.max_images, 1, 10**9, args.max_images is not None),
        ("--absent-per-image", args.absent_per_image, 0, 1000, True),
        ("--max-instances", args.max_instances, 1, 100, True),
        ("--min-ref-size", args.min_ref_size, 1.0, 1e6, True),
        ("--score-floor", args.score_floor, 0.0, 1.0, True),
        ("--threshold", args.threshold, 0.0, 1.0, args.threshold is not None),
    ]
    for name, value, lo, hi, given in checks:
        if given and not lo <= value <= hi:
            raise InvalidArgumentError(f"{name} must be between {lo:g} and {hi:g}, got {value}")


def _check_output(path: str | None) -> None:
    from matcher.errors import InvalidArgumentError

    if path is None:
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InvalidArgumentError(f"cannot write {path}: folder {parent} does not exist")
    if os.path.isdir(path):
        raise InvalidArgumentError(f"cannot write {path}: it is a folder")


def _write_json(path: str, payload: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1)


def _load_matcher(args: argparse.Namespace) -> Any:
    import matcher

    return matcher.load_trained(
        args.recipe,
        args.weights,
        device=args.device,
        overrides=args.overrides or None,
        hint="pass --weights FILE",
    )


# -- pairs ------------------------------------------------------------------------------


def add_pairs(benchmarks: argparse._SubParsersAction) -> None:
    """The ``eval pairs`` parser (:mod:`api.cli_eval_pairs`)."""
    from api.cli_eval_pairs import add_pairs_parser

    add_pairs_parser(benchmarks)


#: The benchmarks of ``siammatch eval``: each adds its parser to the ``eval`` sub-parsers.
def add_retrieval(benchmarks: argparse._SubParsersAction) -> None:
    """The ``eval retrieval`` parser (:mod:`api.cli_eval_retrieval`)."""
    from api.cli_eval_retrieval import add_retrieval as add

    add(benchmarks)


def add_tracking(benchmarks: argparse._SubParsersAction) -> None:
    """The ``eval tracking`` parser (:mod:`api.cli_eval_tracking`)."""
    from api.cli_eval_tracking import add_tracking as add

    add(benchmarks)


#: The benchmarks of ``siammatch eval``: each adds its parser to the ``eval`` sub-parsers.
EVAL_COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_coco_oneshot,
    add_pairs,
    add_retrieval,
    add_tracking,
)
