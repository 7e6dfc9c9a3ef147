"""``siammatch synth --video``: synthetic tracking sequences in a benchmark's layout.

Extends the ``synth`` command (which otherwise writes the COCO e-commerce set) with
``--video --layout {otb,uav123,lasot,got10k,vot,vot-lt} --sequences N --frames F``:
short sequences of a product moving over a table (scale change, occlusion, camera motion,
light changes, leaving the frame), written exactly as that benchmark lays out its files, so
``track-benchmark`` and ``eval tracking`` run on them. See
:mod:`trainers.data.synth.video_layouts`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: The layouts of :data:`trainers.data.synth.video_layouts.LAYOUTS` (kept here so that
#: ``siammatch --help`` does not import the generator).
LAYOUTS = ("otb", "uav123", "lasot", "got10k", "vot", "vot-lt")
#: The benchmark whose reader and protocol go with each layout.
BENCHMARK_OF = {
    "otb": "OTB100",
    "uav123": "UAV123",
    "lasot": "LaSOT",
    "got10k": "GOT-10k",
    "vot": "VOT2018",
    "vot-lt": "VOT2018-LT",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``--video`` options to the ``synth`` parser (registered by :mod:`api.cli_synth`)."""
    parser = sub.choices["synth"]
    group = parser.add_argument_group("tracking sequences (with --video)")
    group.add_argument(
        "--video", action="store_true", help="write tracking sequences instead of scenes"
    )
    group.add_argument("--layout", choices=LAYOUTS, help="benchmark layout of the sequences")
    group.add_argument("--sequences", type=int, help="number of sequences")
    group.add_argument("--frames", type=int, help="frames per sequence")
    scenes = parser.get_default("func")
    parser.set_defaults(func=_dispatch(scenes))


def _dispatch(scenes: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return cmd_synth_video(args) if args.video else scenes(args)

    return run


def cmd_synth_video(args: argparse.Namespace) -> int:
    """Run ``siammatch synth --video``; returns the exit status."""
    from api.cli_synth import parse_size
    from matcher.errors import InvalidArgumentError
    from trainers.data.synth.video_layouts import write_video_dataset

    missing = [f"--{n}" for n in ("layout", "sequences", "frames") if getattr(args, n) is None]
    if missing:
        raise InvalidArgumentError(f"synth --video needs {', '.join(missing)}")
    if args.products is not None or args.scenes is not None:
        raise InvalidArgumentError("--products and --scenes do not apply to --video")
    image_size = parse_size(args.size, example="240x320")
    out = write_video_dataset(
        args.out,
        layout=args.layout,
        sequences=args.sequences,
        frames=args.frames,
        seed=args.seed,
        image_size=image_size,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(
        f"{args.sequences} sequences of {args.frames} frames in the {args.layout} layout "
        f"written to {out}/ (score them as --dataset {BENCHMARK_OF[args.layout]})"
    )
    return 0
