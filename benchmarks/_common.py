"""Small helpers shared by the benchmark scripts (run them from the project root)."""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import time
from collections.abc import Callable


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def recipe_arguments(
    doc: str,
    default_recipes: str,
    *,
    threads: int = 1,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The ``--recipes`` / ``--repeats`` / ``--threads`` command line of the per-recipe
    benchmarks (``threads``: the default of ``--threads``; ``extra`` adds a script's own
    options), parsed; logging quietened and torch's thread count set."""
    import torch

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--recipes", default=default_recipes)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=threads)
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)
    return args


def add_weights_option(parser: argparse.ArgumentParser) -> None:
    """``--weights RECIPE=PATH`` (repeatable): trained weights for a recipe in place of its
    shipped or seeded random ones (read back with :func:`weights_by_recipe`)."""
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="RECIPE=PATH",
        help="trained weights for a recipe (repeatable)",
    )


def weights_by_recipe(parser: argparse.ArgumentParser, given: list[str]) -> dict[str, str]:
    """Recipe name -> weights file from the ``--weights`` values (a usage error, through
    ``parser``, for a value that is not ``RECIPE=PATH``)."""
    pairs = [w.partition("=") for w in given]
    if any(not name or not path for name, _, path in pairs):
        parser.error("--weights takes RECIPE=PATH")
    return {name: path for name, _, path in pairs}


def load_as_served(
    name: str,
    *,
    device: str = "cpu",
    prepare: bool = True,
    overrides: list[str] | None = None,
    weights: str | None = None,
):
    """A recipe's matcher as the service loads it: its shipped weights through
    ``load_trained``, or, for a recipe without any, seeded random weights (seed 0: the same
    in every process); prepared for inference unless ``prepare`` is false; ``overrides``
    as ``--set`` takes them. ``weights``: a checkpoint to load instead."""
    import torch

    import matcher
    from matcher.builder import load_trained

    torch.manual_seed(0)
    if weights is not None:
        return matcher.load(
            name, weights=weights, device=device, prepare=prepare, overrides=overrides
        )
    if matcher.shipped_weights(name):
        return load_trained(name, device=device, prepare=prepare, overrides=overrides)
    return matcher.load(name, device=device, prepare=prepare, overrides=overrides)


def alternating_medians(fns: list, repeats: int) -> list[tuple[float, float]]:
    """Median ``(wall s, this process's CPU s)`` of each function, the functions called in
    turn ``repeats`` times after one warm-up call each (so all see the same machine load)."""
    for fn in fns:
        fn()
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - w0)
            cpu[k].append(time.process_time() - c0)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


_SPLIT_DEFAULT: dict[str, int] = {}


def opencv_correlation(on: bool) -> None:
    """Correlate colour images with OpenCV's three-channel ``TM_CCOEFF_NORMED`` throughout
    (``on``: the code before issue 15's fourth step) or, as today, channel by channel on
    large images (:mod:`matcher.baselines.correlation`)."""
    from matcher.baselines import correlation

    default = _SPLIT_DEFAULT.setdefault("split_from", correlation.SPLIT_FROM)
    correlation.SPLIT_FROM = 1 << 62 if on else default
