"""Small helpers shared by the benchmark scripts (run them from the project root)."""

from __future__ import annotations

import argparse
import logging
import resource


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def recipe_arguments(doc: str, default_recipes: str) -> argparse.Namespace:
    """The ``--recipes`` / ``--repeats`` / ``--threads`` command line of the per-recipe
    benchmarks, parsed; logging quietened and torch's thread count set."""
    import torch

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--recipes", default=default_recipes)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)
    return args
