"""Run every test that trains under ``SIAMMATCH_TEST_SEED=0..N-1`` and summarise the
values they print (``SPREAD`` lines, :func:`tests.helpers.spread_line`): the observed range
each training test's threshold is set from.

    python -m tests.seed_spread [--seeds 5] [--jobs 2] [-k EXPR]

Each seed is one pytest process with one torch thread; ``--jobs`` of them run at once.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING_TESTS = [
    "tests/trainers/test_learning.py::test_training_improves_held_out_localisation",
    "tests/trainers/test_shipped_weights.py::test_a_short_training_run_lands_within_the_cards_tolerance",
    "tests/trainers/test_siam_mask_rcnn_training.py::test_tiny_recipe_learns_to_detect_and_segment_unseen_products",
    "tests/trainers/test_losses_contrastive.py::test_info_nce_training_separates_products",
]
LINE = re.compile(r"SPREAD (\S+) seed=(\d+) (.*)$")  # pytest may print a progress mark first


def run_seed(seed: int, selection: list[str]) -> tuple[int, list[str], int]:
    env = {**os.environ, "SIAMMATCH_TEST_SEED": str(seed), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *selection]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return seed, done.stdout.splitlines(), done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    args = parser.parse_args(argv)
    selection = [*TRAINING_TESTS, *(["-k", args.keyword] if args.keyword else [])]
    values: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    with ThreadPoolExecutor(args.jobs) as pool:
        for seed, lines, code in pool.map(lambda s: run_seed(s, selection), range(args.seeds)):
            print(f"seed {seed}: pytest exit {code}", flush=True)
            for line in lines:
                match = LINE.search(line)
                if match:
                    test, _, rest = match.groups()
                    for item in rest.split():
                        key, value = item.split("=")
                        values[test][key][seed] = float(value)
    for test in sorted(values):
        print(test)
        for key, per_seed in values[test].items():
            row = " ".join(f"{per_seed[s]:.3f}" for s in sorted(per_seed))
            low, high = min(per_seed.values()), max(per_seed.values())
            print(f"  {key:24s} min {low:.3f} max {high:.3f}  [{row}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
