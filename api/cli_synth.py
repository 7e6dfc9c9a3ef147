"""``siammatch synth``: generate the synthetic e-commerce dataset (COCO format).

Writes ``--products`` catalog products and ``--scenes`` cluttered scenes they are pasted
into (:func:`trainers.data.synth.generate`); the same seed gives the same dataset.
:mod:`api.cli_synth_video` adds ``--video`` (tracking sequences) to the same parser and
shares :func:`parse_size`. Heavy imports stay inside :func:`cmd_synth`.
"""

from __future__ import annotations

import argparse
import logging
import re

from api.cli import UsageError

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command to the ``siammatch`` parser."""
    p = sub.add_parser("synth", help="generate a synthetic e-commerce dataset (COCO format)")
    p.add_argument("--out", required=True, help="output folder (must be new or empty)")
    p.add_argument("--products", type=int, help="number of catalog products (required)")
    p.add_argument("--scenes", type=int, help="number of scene images (required)")
    p.add_argument("--seed", type=int, default=0, help="seed; same seed, same dataset")
    p.add_argument("--size", default="480x640", help="scene size HxW (default 480x640)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=cmd_synth)


def parse_size(text: str, *, example: str) -> tuple[int, int]:
    """``--size HxW`` as ``(height, width)``; ``example`` is quoted in the error message.

    Raises:
        InvalidArgumentError: ``text`` is not ``HxW``.
    """
    from matcher.errors import InvalidArgumentError

    size = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if size is None:
        raise InvalidArgumentError(f"--size {text!r}: expected HxW, e.g. {example}")
    return int(size.group(1)), int(size.group(2))


def cmd_synth(args: argparse.Namespace) -> int:
    """Run ``siammatch synth`` (scenes); returns the exit status."""
    from trainers.data.synth import generate

    if args.products is None or args.scenes is None:
        raise UsageError("synth needs --products and --scenes (or --video, see synth --help)")
    image_size = parse_size(args.size, example="480x640")
    out = generate(
        args.out,
        num_products=args.products,
        num_scenes=args.scenes,
        seed=args.seed,
        image_size=image_size,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(f"{args.scenes} scenes and {args.products} catalog products written to {out}/")
    return 0
