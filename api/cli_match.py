"""``siammatch match``: find a reference product in a scene image.

Prints the instances found (or JSON with ``--json``) and, with ``-o``, writes the scene
annotated with their boxes and masks. Heavy imports stay inside :func:`cmd_match`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from api.cli import UsageError, load_matcher, model_args
from api.media_io import IMAGE_SUFFIXES, check_writable, save_image

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``match`` sub-command to the ``siammatch`` parser."""
    p = sub.add_parser("match", help="find a reference product in a scene")
    p.add_argument("reference", help="reference (product) image")
    p.add_argument("scene", help="scene image")
    p.add_argument("--ref-box", help="product box in the reference image: x0,y0,x1,y1")
    model_args(p)
    p.add_argument("--max-instances", type=int, default=None, help="cap on instances")
    p.add_argument("--threshold", type=float, default=None, help="minimum score in [0, 1]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-o", "--output", help="write the annotated scene to this image file")
    p.set_defaults(func=cmd_match)


def cmd_match(args: argparse.Namespace) -> int:
    """Run ``siammatch match``; returns the exit status."""
    import matcher
    from matcher.images import load_image, parse_box

    for path in (args.reference, args.scene):
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
    ref_box = parse_box(args.ref_box) if args.ref_box else None
    reference = matcher.Reference.from_image(args.reference, ref_box, id=Path(args.reference).stem)
    scene = load_image(args.scene)
    if args.output:
        check_writable(args.output, IMAGE_SUFFIXES, "an image file")
    m = load_matcher(args)
    result = m.match(
        reference, scene, max_instances=args.max_instances, score_threshold=args.threshold
    )
    if args.json:
        payload = {"recipe": m.name, **result.to_dict()}
        print(json.dumps(payload, indent=2))
    else:
        if not result.instances:
            print(f"no instance of {Path(args.reference).name} found (recipe {m.name})")
        for i, inst in enumerate(result.instances, 1):
            x0, y0, x1, y1 = inst.box
            mask = f" mask {int(inst.mask.sum())} px" if inst.mask is not None else ""
            print(f"{i}. score {inst.score:.3f} box {x0:.1f},{y0:.1f},{x1:.1f},{y1:.1f}{mask}")
    if args.output:
        from api.render import draw_instances

        save_image(args.output, draw_instances(scene, result.instances))
        if not args.json:
            print(f"annotated scene written to {args.output}")
    return 0
