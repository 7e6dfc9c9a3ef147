"""``siammatch calibrate``: fit the calibrated match score of a recipe on a validation split.

The recipe runs with its geometric stage on (``inference.match.geometric=true``) and
without any calibration, so the samples are the fallback's candidates; the fitted file is
what ``inference.match.calibration`` then names (:mod:`trainers.calibrate`). The real-photo
set is built first when ``--data`` is not given. The test split is refused: it is for
evaluation only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``calibrate`` command to ``sub`` (an ``add_subparsers``)."""
    from api.cli_eval_pairs import DEFAULT_REAL_SEED
    from api.defaults import DEFAULT_RECIPE

    p = sub.add_parser(
        "calibrate",
        help="fit a recipe's calibrated match score on the real-photo validation split",
    )
    p.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"recipe (default {DEFAULT_RECIPE})")
    p.add_argument("--weights", help="weights file (default: the shipped ones)")
    p.add_argument("--data", help="real-photo set folder (default: build it under var/eval/)")
    p.add_argument("--seed", type=int, default=DEFAULT_REAL_SEED, help="seed of a built set")
    p.add_argument("--split", default="val", help="split fitted on (train or val; default val)")
    p.add_argument("--l2", type=float, default=1e-2, help="L2 penalty per sample (default 0.01)")
    p.add_argument("--out", required=True, help="calibration JSON to write")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from api.cli import UsageError, load_matcher
    from api.cli_eval_pairs import DEFAULT_DATA_ROOT
    from api.cli_eval_real import _ensure_real_set
    from trainers.calibrate import collect_samples, fit_split

    if args.split not in ("train", "val"):
        raise UsageError(f"--split must be train or val (test is for evaluation), not {args.split}")
    if not args.l2 > 0:
        raise UsageError(f"--l2 must be positive, got {args.l2}")
    out = Path(args.out)
    if out.is_dir() or not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise UsageError(f"--out {args.out}: give a file in an existing folder")
    if args.data:
        root = Path(args.data)
        if not (root / "annotations.json").is_file():
            raise UsageError(f"--data {args.data}: no annotations.json there")
    else:
        root = _ensure_real_set(DEFAULT_DATA_ROOT / f"real-seed{args.seed}", args.seed)
    ns = argparse.Namespace(
        recipe=args.recipe,
        weights=args.weights,
        device=args.device,
        overrides=["inference.match.geometric=true", "inference.match.calibration="],
    )
    matcher = load_matcher(ns)
    samples = collect_samples(matcher, root, split=args.split, progress=True)
    meta = {
        "recipe": args.recipe,
        "weights": args.weights or "shipped",
        "data": str(root),
        "split": args.split,
        "l2": args.l2,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        cal = fit_split(samples, meta=meta, l2=args.l2)
    except ValueError as exc:
        raise UsageError(f"cannot fit on split {args.split}: {exc}") from None
    cal.save(out)
    weights = ", ".join(f"{f} {w:+.2f}" for f, w in zip(cal.features, cal.weights, strict=True))
    print(
        f"{out}: {cal.meta['samples']} candidates ({cal.meta['positives']} correct) from "
        f"{cal.meta['trials']} trials; weights {weights}; bias {cal.bias:+.2f}; "
        f"ECE of the top candidate {cal.meta['ece_top_fitted']:.3f}"
    )
    return 0
