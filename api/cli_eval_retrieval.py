"""``siammatch eval retrieval``: catalog retrieval recall of embedders on a held-out set.

Every catalog photo of a held-out synthetic set is embedded; every mostly visible product
instance of its scenes is cut out (square around the box) and used as a query; recall@k of
the true product over the whole catalog is reported for each embedder given with
``--embedder`` (default: the shipped ``weights/embedder_default.pth``) and for the
baseline of untrained pooled features (the same backbone, untrained, GeM-pooled, no head).
The held-out set is the one of ``siammatch eval pairs`` (a seed no recipe trains on).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from api.cli_eval_pairs import DEFAULT_DATA_ROOT, DEFAULT_EVAL_PRODUCTS, DEFAULT_EVAL_SEED

DEFAULT_EMBEDDER = Path(__file__).resolve().parent.parent / "weights" / "embedder_default.pth"


def add_retrieval(benchmarks: argparse._SubParsersAction) -> None:
    """The ``eval retrieval`` parser."""
    p = benchmarks.add_parser(
        "retrieval",
        help="catalog retrieval recall@k of embedders on held-out synthetic products",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "--embedder",
        action="append",
        help="embedder checkpoint (repeatable; default: the shipped default embedder)",
    )
    p.add_argument("--data", help="a `siammatch synth` dataset (default: the held-out set)")
    p.add_argument("--seed", type=int, default=DEFAULT_EVAL_SEED, help="held-out set seed")
    p.add_argument("--products", type=int, default=DEFAULT_EVAL_PRODUCTS, help="catalog size")
    p.add_argument("--scenes", type=int, default=100, help="held-out scenes")
    p.add_argument("--ks", default="1,5,10", help="recall cut-offs, comma separated")
    p.add_argument("--output", help="write the JSON report to this file")
    p.set_defaults(func=cmd_eval_retrieval)


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    """Run ``siammatch eval retrieval``; prints a Markdown table."""
    from api.cli import UsageError
    from matcher.embedder import build_embedder, load_embedder
    from trainers.evaluate.heldout import ensure_held_out_set
    from trainers.evaluate.retrieval import PooledFeatures, evaluate_embedders

    try:
        ks = tuple(int(k) for k in args.ks.split(","))
    except ValueError:
        raise UsageError(f"--ks {args.ks!r} is not a comma-separated list of integers") from None
    if not ks or min(ks) < 1:
        raise UsageError("--ks values must be >= 1")
    paths = [Path(p) for p in args.embedder or [DEFAULT_EMBEDDER]]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"embedder file {path} does not exist")
    if args.data:
        root = Path(args.data)
    else:
        root = ensure_held_out_set(
            DEFAULT_DATA_ROOT / f"pairs-seed{args.seed}-p{args.products}",
            seed=args.seed,
            num_scenes=args.scenes,
            num_products=args.products,
        )
    embedders: dict[str, object] = {}
    for path in paths:
        embedders[path.stem] = load_embedder(path)
    first = next(iter(embedders.values()))
    embedders["pooled untrained features"] = PooledFeatures(build_embedder(first.spec))
    reports = evaluate_embedders(root, embedders, ks=ks)
    header = " | ".join(f"recall@{k}" for k in ks)
    print(f"| embedder | {header} | mean rank | queries | products |")
    print("|---|" + "---|" * (len(ks) + 3))
    for name, report in reports.items():
        cells = " | ".join(f"{report.recall[k]:.3f}" for k in ks)
        print(
            f"| {name} | {cells} | {report.mean_rank:.2f} | {report.num_queries} | "
            f"{report.num_products} |"
        )
    if args.output:
        document = {"data": str(root), "reports": {k: v.as_dict() for k, v in reports.items()}}
        Path(args.output).write_text(json.dumps(document, indent=2) + "\n")
    return 0
