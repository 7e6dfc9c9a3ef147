"""``siammatch demo``: match a generated scene with the default matcher.

Generates a product and a cluttered scene it is pasted into (:func:`api.demo.demo_pair`),
matches them, and writes the reference, the scene, the annotated result and a JSON record
(with the pasted truth) to ``--out``. Heavy imports stay inside :func:`cmd_demo`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from api.cli import load_matcher, model_args
from api.media_io import save_image

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command to the ``siammatch`` parser."""
    p = sub.add_parser("demo", help="match a generated scene with the default matcher")
    p.add_argument("--out", default="var/demo", help="folder for the demo images and JSON")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated scene")
    model_args(p)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``siammatch demo``; returns the exit status."""
    import matcher
    from api.demo import demo_pair
    from api.render import draw_instances

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    product, scene, truth = demo_pair(seed=args.seed)
    m = load_matcher(args)
    reference = matcher.Reference.from_image(product, id="demo-product")
    result = m.match(reference, scene, max_instances=5)
    save_image(str(out / "reference.png"), product)
    save_image(str(out / "scene.png"), scene)
    save_image(str(out / "result.png"), draw_instances(scene, result.instances))
    (out / "result.json").write_text(
        json.dumps({"recipe": m.name, "truth": truth, **result.to_dict()}, indent=2)
    )
    print(f"recipe {m.name}: {len(result.instances)} instance(s) found, {len(truth)} pasted")
    for inst in result.instances:
        print(f"  score {inst.score:.3f} box {', '.join(f'{v:.0f}' for v in inst.box)}")
    print(f"images and JSON written to {out}/")
    return 0
