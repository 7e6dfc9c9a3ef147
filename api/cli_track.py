"""``siammatch track``: follow a box through a folder of frames or a video.

The first frame's box initialises the tracker of the chosen recipe; every frame's box is
printed (or given as JSON with ``--json``) and, with ``-o``, drawn into an annotated video
or folder of frames (:mod:`api.media_io`). Heavy imports stay inside :func:`cmd_track`.
"""

from __future__ import annotations

import argparse
import json
import logging

from api.cli import UsageError, load_matcher, model_args
from api.media_io import output_writer, read_frames

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``track`` sub-command to the ``siammatch`` parser."""
    p = sub.add_parser("track", help="track a box through a folder of frames or a video")
    p.add_argument("source", help="folder of frames (sorted by name) or a video file")
    p.add_argument("--box", required=True, help="box in the first frame: x0,y0,x1,y1")
    model_args(p)
    p.add_argument("--json", action="store_true", help="print per-frame boxes as JSON")
    p.add_argument("-o", "--output", help="annotated output: a video file or a folder")
    p.set_defaults(func=cmd_track)


def cmd_track(args: argparse.Namespace) -> int:
    """Run ``siammatch track``; returns the exit status."""
    from tqdm import tqdm

    from api.render import draw_instances
    from matcher.images import parse_box
    from matcher.structures import Instance

    box = parse_box(args.box)
    frames, total = read_frames(args.source)
    writer = output_writer(args.output) if args.output else None
    m = load_matcher(args)
    tracker = m.tracker()
    records = []
    try:
        for index, frame in enumerate(
            tqdm(frames, total=total, desc="tracking", unit="frame", disable=args.json)
        ):
            if index == 0:
                tracker.init(frame, box)
                inst = Instance(box=tuple(float(v) for v in box), score=1.0)  # type: ignore[arg-type]
            else:
                inst = tracker.track(frame)
            records.append({"frame": index, **inst.to_dict()})
            if writer is not None:
                writer(index, draw_instances(frame, [inst]))
        if not records:
            raise UsageError(f"{args.source} holds no frames")
    finally:
        if writer is not None:
            writer(None, None)
    if args.json:
        print(json.dumps({"recipe": m.name, "frames": records}, indent=2))
    else:
        last = records[-1]["box"]
        print(f"tracked {len(records)} frames; last box {', '.join(f'{v:.1f}' for v in last)}")
        if args.output:
            print(f"annotated output written to {args.output}")
    return 0
