"""``siammatch eval pairs``: one-shot localisation of several matchers on held-out scenes.

With ``--set synthetic`` (the default) it runs the protocol of
:mod:`trainers.evaluate.pairs_protocol` on a held-out synthetic set (generated from a seed
no recipe trains on, :mod:`trainers.evaluate.heldout`); with ``--set real`` the protocol of
:mod:`trainers.evaluate.real_protocol` on a split of the real-photo set
(:mod:`trainers.evaluate.real_set`: ``test`` to evaluate, ``val`` to calibrate; ``train`` is
refused), which adds the per-category success, the instance recall, AUROC, the calibration
error and a reliability diagram (``--reliability``). Both run several matchers side by side
and print Markdown tables; ``--output`` writes the JSON report, ``--markdown`` the tables.
Every argument, matcher, output path and (for the real set) every file of the split is
checked before any scene is generated or matched.

:func:`add_pairs_parser` adds the sub-command to the ``eval`` command's sub-parsers
(:data:`api.cli_eval.EVAL_COMMANDS`). This module imports nothing heavy at the top, so
building the ``siammatch`` parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MATCHERS = "siammask_small,baseline_sift,baseline_template"
DEFAULT_SCENES = 100
#: Seed of a generated real-photo set (the default of ``build_real_set``).
DEFAULT_REAL_SEED = 2026
DEFAULT_DATA_ROOT = Path("var/eval")
#: Seed of the held-out set. Recipes train on small seeds (``configs/tiny/_data.yaml``: 11
#: and 12; the test suite: 21 and 22); the command refuses any seed a recipe trains on.
DEFAULT_EVAL_SEED = 1_000_003
#: Catalog size of a generated held-out set.
DEFAULT_EVAL_PRODUCTS = 40


def add_pairs_parser(eval_sub: Any) -> argparse.ArgumentParser:
    """Add ``pairs`` to the ``eval`` command's sub-parsers; returns its parser."""
    p = eval_sub.add_parser(
        "pairs",
        help="one-shot localisation on held-out synthetic scenes or real photos, several matchers",
        description=(
            "For each held-out scene, find each product present (reference: its catalog "
            "photo) and one absent product; report success@IoU0.5, mean IoU, mask IoU, "
            "false-positive rate on absent products and median latency per matcher. With "
            "--set real, run the trials of a split of the real-photo set instead and add "
            "success per category, instance recall on several-instance scenes, AUROC "
            "present vs absent, the calibration error of the top score and a reliability "
            "diagram."
        ),
    )
    p.add_argument(
        "--matchers",
        default=DEFAULT_MATCHERS,
        help="comma-separated recipe or baseline names, recipe YAML files, or RECIPE:WEIGHTS "
        f"(default: {DEFAULT_MATCHERS})",
    )
    p.add_argument(
        "--set",
        dest="eval_set",
        choices=("synthetic", "real"),
        default="synthetic",
        help="held-out synthetic scenes (default) or the real-photo set",
    )
    p.add_argument(
        "--split",
        help="split of the real-photo set: test (default; evaluation) or val (calibration)",
    )
    p.add_argument(
        "--scenes",
        type=int,
        help=f"held-out scenes used (synthetic set; default {DEFAULT_SCENES})",
    )
    p.add_argument(
        "--seed",
        type=int,
        help=f"seed of the held-out set and of the absent-product draws (synthetic: default "
        f"{DEFAULT_EVAL_SEED}, refused if a recipe trains on it); of the real-photo set built "
        f"when --data is not given (real: default {DEFAULT_REAL_SEED})",
    )
    p.add_argument(
        "--data",
        help="an existing dataset to evaluate on: a `siammatch synth` set, or a real-photo set "
        f"folder with --set real (default: generate one from --seed under {DEFAULT_DATA_ROOT}/)",
    )
    p.add_argument(
        "--products",
        type=int,
        help=f"catalog size of a generated synthetic set (default {DEFAULT_EVAL_PRODUCTS})",
    )
    p.add_argument("--workers", type=int, help="processes generating the synthetic set (default 2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (Siamese matchers)")
    p.add_argument("--output", help="write the JSON report to this file")
    p.add_argument("--markdown", help="write the Markdown table(s) to this file")
    p.add_argument(
        "--reliability",
        metavar="PNG",
        help="write the reliability diagram of the top scores here (--set real)",
    )
    p.set_defaults(func=cmd_eval_pairs)
    return p


def _parse_matchers(text: str) -> list[tuple[str, str | None]]:
    from api.cli import UsageError

    specs = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        recipe, sep, weights = item.partition(":")
        if sep and not weights:
            raise UsageError(f"--matchers item {item!r}: give RECIPE:WEIGHTS or RECIPE")
        specs.append((recipe.strip(), weights.strip() or None))
    if not specs:
        raise UsageError("--matchers lists no matcher")
    return specs


def _check_output(path: str | None, flag: str) -> None:
    from api.cli import UsageError

    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if not (target.parent if str(target.parent) else Path(".")).is_dir():
        raise UsageError(f"{flag} {path}: folder {target.parent} does not exist")


def _load_matchers(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``(spec, matcher)`` for every ``--matchers`` item, each loaded and checked."""
    from api.cli import load_matcher

    matchers = []
    for recipe, weights in _parse_matchers(args.matchers):
        ns = argparse.Namespace(recipe=recipe, weights=weights, device=args.device, overrides=[])
        matchers.append((f"{recipe}:{weights}" if weights else recipe, load_matcher(ns)))
    return matchers


def cmd_eval_pairs(args: argparse.Namespace) -> int:
    """Run ``siammatch eval pairs`` (see the module docstring)."""
    if args.eval_set == "real":
        from api.cli_eval_real import cmd_eval_pairs_real

        return cmd_eval_pairs_real(args)
    return _cmd_eval_pairs_synthetic(args)


def _cmd_eval_pairs_synthetic(args: argparse.Namespace) -> int:
    from api.cli import UsageError
    from matcher.recipes import recipe_dir
    from trainers.evaluate import pairs_protocol as protocol
    from trainers.evaluate.heldout import (
        check_held_out,
        ensure_held_out_set,
        read_dataset_info,
        synth_sources,
    )

    for flag, value in (("--split", args.split), ("--reliability", args.reliability)):
        if value is not None:
            raise UsageError(f"{flag} applies to --set real only")
    args = argparse.Namespace(**vars(args))  # the synthetic defaults, on a copy
    for name, default in (
        ("scenes", DEFAULT_SCENES),
        ("seed", DEFAULT_EVAL_SEED),
        ("products", DEFAULT_EVAL_PRODUCTS),
        ("workers", 2),
    ):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.scenes < 1:
        raise UsageError(f"--scenes must be >= 1, got {args.scenes}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    _check_output(args.output, "--output")
    _check_output(args.markdown, "--markdown")
    matchers = _load_matchers(args)

    sources = synth_sources(recipe_dir())
    if args.data:
        root = Path(args.data)
        if not (root / "annotations.json").is_file():
            raise UsageError(f"--data {args.data}: no annotations.json there")
        info = read_dataset_info(root)
        if "seed" not in info:
            raise UsageError(f"--data {args.data}: not a `siammatch synth` set (no info.seed)")
        data_seed, num_products = int(info["seed"]), int(info.get("num_products", 0))
    else:
        root = DEFAULT_DATA_ROOT / f"pairs-seed{args.seed}-p{args.products}"
        data_seed, num_products = args.seed, args.products
    excluded, held_out = check_held_out(data_seed, num_products, sources)
    if not args.data:
        ensure_held_out_set(
            root,
            seed=args.seed,
            num_scenes=args.scenes,
            num_products=args.products,
            workers=args.workers,
        )
    document = protocol.load_document(root)
    trials = protocol.make_trials(
        document, num_scenes=args.scenes, seed=args.seed, exclude_products=excluded
    )
    catalog = protocol.catalog_paths(document, root)
    images_dir = root / str(document.get("info", {}).get("images_dir", "images"))

    summaries, rows = [], []
    for spec, m in matchers:
        outcomes = protocol.run_trials(
            m, trials, images_dir=images_dir, catalog=catalog, progress=True
        )
        summary = protocol.summarise(m.name, outcomes)
        summaries.append(summary)
        rows.append({"spec": spec, "threshold": m.score_threshold, **summary.to_dict()})
    table = protocol.markdown_table(summaries)
    print(table, end="")
    report = {
        "protocol": "siammatch eval pairs",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": str(root),
        "seed": args.seed,
        "scenes": args.scenes,
        "trials": {
            "present": sum(t.present for t in trials),
            "absent": sum(not t.present for t in trials),
        },
        "held_out_check": held_out,
        "matchers": rows,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0
