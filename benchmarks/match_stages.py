"""The default matcher's per-reference match stages before and after the third step of
issue 15: fewer verified boxes, a smaller template-matching pyramid, USAC homographies, the
verifier's embedder prepared, and the stages on several threads.

Fixed workload: ``benchmarks/match_speed.py``'s (the 640x480 ``matcher_latency`` scene with
the 200x200 coffee product at 120 px; ``match_many(16)`` with the product and 15 other
photographs' crops, mostly absent as in a catalog search). Settings, run alternately so
both see the same machine load:

* *before*: the recipe as shipped before that step: 48 verified boxes, the template
  pyramid enlarged up to 2.5x, classic RANSAC (1,000 iterations), the network prepared but
  not the embedder, every stage in the calling thread (``SIAMMATCH_MATCH_THREADS=1``);
* *after*: ``load_trained`` today, ``--match-threads`` workers for the per-reference stages
  and the scene preparation beside the search.

With ``--previous``, *before* is the default at the end of that step instead: the matcher
of *after*, loaded twice, its colour correlations computed by OpenCV's three-channel
``matchTemplate`` throughout (the fourth step computes them channel by channel on large
images, :mod:`matcher.baselines.correlation`), both with ``--match-threads`` workers.

Both use ``--threads`` torch threads (default: 2, the cores of this machine). Figures are
medians of ``--repeats`` calls after a warm-up, as wall time and as this process's CPU
time (all threads); ratios likewise, wall / CPU.

    python benchmarks/match_stages.py [--recipes a,b] [--repeats N] [--threads N]
        [--match-threads N] [--previous]
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402

import torch  # noqa: E402

import matcher  # noqa: E402
from benchmarks._common import load_as_served, opencv_correlation, recipe_arguments  # noqa: E402
from benchmarks.eval_before import BEFORE_GEOMETRIC, BEFORE_NCC  # noqa: E402
from benchmarks.match_speed import ms, one_and_many  # noqa: E402
from matcher.inference.geometric import GeometricVerifier  # noqa: E402
from matcher.inference.ncc import NccVerifier  # noqa: E402
from matcher.inference.parallel import ENV  # noqa: E402
from matcher.inference_prep import prepare_for_inference  # noqa: E402


def _load(name: str, *, after: bool):
    if after:
        return load_as_served(name)
    torch.manual_seed(0)  # the same random weights as load_as_served's when none are shipped
    m = matcher.load(name, overrides=BEFORE)
    prepare_for_inference(m.net)
    if m.geometric is not None:
        m.geometric = GeometricVerifier(BEFORE_GEOMETRIC)
    if m.ncc is not None:
        m.ncc = NccVerifier(BEFORE_NCC)
    return m


#: The recipe setting the step changed (the stage settings are ``benchmarks/eval_before``'s).
BEFORE = ["inference.match.verifier_candidates=48"]


def bench(
    name: str, repeats: int, workers: int, previous: bool
) -> dict[str, dict[str, tuple[float, float]]]:
    if previous:  # the same matcher twice; "before" correlates as before the fourth step
        models = {"before": _load(name, after=True), "after": _load(name, after=True)}
        threads = {"before": str(workers), "after": str(workers)}
    else:
        models = {"before": _load(name, after=False), "after": _load(name, after=True)}
        threads = {"before": "1", "after": str(workers)}

    def setting(key: str) -> None:
        os.environ[ENV] = threads[key]
        opencv_correlation(previous and key == "before")

    return one_and_many(models, repeats, setting)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--match-threads", type=int, default=2)
    parser.add_argument(
        "--previous",
        action="store_true",
        help="before = the default at the end of the third step (today's settings and "
        "threads, OpenCV's three-channel correlation) instead of before the third step",
    )


def main() -> None:
    args = recipe_arguments(__doc__, "siammask_small", threads=2, extra=_options)
    print(
        f"# match stages {'fourth' if args.previous else 'third'} step before/after — "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.threads} torch thread(s), {args.match_threads} match "
        f"thread(s) after, {args.repeats} repeats; ms as wall / CPU\n"
    )
    print(
        "| recipe | match before | match after | after/before | many(16) before "
        "| many(16) after | after/before | many(16)/match(1) before | after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.recipes.split(","):
        r = bench(name, args.repeats, args.match_threads, args.previous)
        b1, a1 = r["before"]["match"], r["after"]["match"]
        bm, am = r["before"]["many"], r["after"]["many"]

        def ratio(a: tuple[float, float], b: tuple[float, float]) -> str:
            return f"{a[0] / b[0]:.2f} / {a[1] / b[1]:.2f}"

        print(
            f"| {name} | {ms(b1)} | {ms(a1)} | {ratio(a1, b1)} | {ms(bm)} | {ms(am)} "
            f"| {ratio(am, bm)} | {ratio(bm, b1)} | {ratio(am, a1)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
