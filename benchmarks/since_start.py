"""``match(1)`` now against the code at the start of issue 15 (or any older checkout).

The issue's match-time goal is relative to the code of its start. This script times one
640x480 match per recipe in both checkouts, each in fresh processes, in turn: the older
checkout loads the recipe as that code did (``matcher.load``: the network as built, the
recipe's shipped weights from that checkout's ``weights/`` if it has them, else seeded
random ones); this one as the service loads it
(:func:`benchmarks._common.load_as_served`), with the search its recipe ships
(``--search exhaustive`` or ``coarse-to-fine`` sets ``inference.match.coarse_to_fine`` for
every recipe instead). Workload: the
``benchmarks/matcher_latency.py`` scene and product, which the older checkout must have.

``--weights RECIPE=PATH`` (repeatable) gives a recipe trained weights on both sides
instead (a checkpoint of that layout, e.g. a ``configs/proxy/`` stand-in's ``last.pth``):
seeded random weights propose boxes no trained network would, which decides how much
work the coarse-to-fine search's refinement does.

    git worktree add /tmp/issue15start 8f1409e~1
    python benchmarks/since_start.py /tmp/issue15start [--recipes a,b] [--repeats 2]
        [--threads 2] [--search shipped|exhaustive|coarse-to-fine] [--weights R=PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import add_weights_option, weights_by_recipe

DEFAULT = (
    "siammask_small,siamrpnpp_alexnet,siamrpnpp_mobilenetv2,siamfcpp_alexnet,siammask_r50,"
    "siamrpnpp_r50"
)

# Run with the checkout as the working directory; argv: recipe, "start" or "now", repeats,
# the trained weights ("" for none), then the overrides of this checkout's matcher.
_WORKER = """
import json, os, statistics, sys, time
sys.path.insert(0, os.getcwd())
import torch
import matcher
from benchmarks.matcher_latency import _scene
name, side, repeats, given = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] or None
overrides = sys.argv[5:]
if side == "now":
    from benchmarks._common import load_as_served
    m = load_as_served(name, weights=given, overrides=overrides or None)
else:
    torch.manual_seed(0)
    shipped = os.path.join("weights", name + ".pth")
    m = matcher.load(name, weights=given or (shipped if os.path.isfile(shipped) else None))
product, scene = _scene()
feats = m.encode_reference(matcher.Reference.from_image(product))
m.match(feats, scene)
times = []
for _ in range(repeats):
    start = time.perf_counter()
    m.match(feats, scene)
    times.append(time.perf_counter() - start)
print(json.dumps(1000 * statistics.median(times)))
"""


def _time(checkout: Path, side: str, recipe: str, args: argparse.Namespace) -> float:
    overrides = {
        "shipped": [],
        "exhaustive": ["inference.match.coarse_to_fine=false"],
        "coarse-to-fine": ["inference.match.coarse_to_fine=true"],
    }[args.search]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "SIAMMATCH_MATCH_THREADS": str(args.threads),
    }
    given = str(Path(args.weights[recipe]).resolve()) if recipe in args.weights else ""
    cmd = [sys.executable, "-c", _WORKER, recipe, side, str(args.repeats), given]
    if side == "now":
        cmd += overrides
    done = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{recipe} in {checkout}: {done.stderr.strip().splitlines()[-1]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", type=Path, help="the older checkout (a git worktree)")
    parser.add_argument("--recipes", default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--search",
        choices=("shipped", "exhaustive", "coarse-to-fine"),
        default="shipped",
        help="this checkout's match search: as each recipe ships it, or one for all",
    )
    add_weights_option(parser)
    args = parser.parse_args()
    args.weights = weights_by_recipe(parser, args.weights)
    here = Path(__file__).resolve().parents[1]
    search = "as each recipe ships it" if args.search == "shipped" else args.search
    print(
        f"# match(1) since {args.start}: {args.threads} torch and match threads, medians of "
        f"{args.repeats} after a warm-up; this checkout's search {search}\n"
    )
    print("| recipe | start ms | now ms | now/start |")
    print("|---|---:|---:|---:|")
    ratios = []
    for recipe in args.recipes.split(","):
        start = _time(args.start.resolve(), "start", recipe, args)
        now = _time(here, "now", recipe, args)
        ratios.append(now / start)
        label = f"{recipe} (trained)" if recipe in args.weights else recipe
        print(f"| {label} | {start:.0f} | {now:.0f} | {now / start:.2f} |", flush=True)
    print(f"\nmedian now/start: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
