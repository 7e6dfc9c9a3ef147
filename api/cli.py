"""The ``siammatch`` command line.

Sub-commands: ``match`` (find a reference in a scene), ``track`` (follow a box through
frames or a video), ``recipes`` (list the model recipes), ``demo`` (a self-contained run
on generated images), ``synth`` (generate the synthetic e-commerce dataset) and ``train``
(train a recipe, :mod:`trainers.train`). Any user
mistake — a bad path, an unreadable image, a box outside the image, a wrong weights file —
prints one line ``siammatch: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from api.defaults import DEFAULT_RECIPE

logger = logging.getLogger(__name__)

#: The shipped trained matcher (weights/siammask_small.pth, verified by embedder_default.pth).
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


# Modules that add their own sub-commands: each defines ``register(sub)``, which adds
# parsers to the ``add_subparsers`` object and sets ``func`` on them (heavy imports stay
# inside the command functions, so ``siammatch --help`` remains fast).
COMMAND_MODULES: tuple[str, ...] = (
    "api.cli_eval",
    "api.cli_serve",
    "api.cli_catalog",
    "api.cli_calibrate",
    "api.cli_track_benchmark",
    "api.cli_synth_video",
)


class UsageError(Exception):
    """A command-line mistake outside the library's own error types."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``siammatch`` console script; returns the exit status."""
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the trainer has its own parser (also used under torchrun)
        from trainers.train import main as train_main

        return train_main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from matcher.errors import SiammatchError

    try:
        return int(args.func(args) or 0)
    except (SiammatchError, UsageError) as exc:
        print(f"siammatch: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"siammatch: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siammatch: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siammatch",
        description="One-shot product matching with Siamese networks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("match", help="find a reference product in a scene")
    p.add_argument("reference", help="reference (product) image")
    p.add_argument("scene", help="scene image")
    p.add_argument("--ref-box", help="product box in the reference image: x0,y0,x1,y1")
    _model_args(p)
    p.add_argument("--max-instances", type=int, default=None, help="cap on instances")
    p.add_argument("--threshold", type=float, default=None, help="minimum score in [0, 1]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-o", "--output", help="write the annotated scene to this image file")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("track", help="track a box through a folder of frames or a video")
    p.add_argument("source", help="folder of frames (sorted by name) or a video file")
    p.add_argument("--box", required=True, help="box in the first frame: x0,y0,x1,y1")
    _model_args(p)
    p.add_argument("--json", action="store_true", help="print per-frame boxes as JSON")
    p.add_argument("-o", "--output", help="annotated output: a video file or a folder")
    p.set_defaults(func=cmd_track)

    sub.add_parser(
        "train",
        help="train a recipe (see `siammatch train --help`)",
        add_help=False,
    )

    p = sub.add_parser("recipes", help="list the model recipes")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("demo", help="match a generated scene with the default matcher")
    p.add_argument("--out", default="var/demo", help="folder for the demo images and JSON")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated scene")
    _model_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="generate a synthetic e-commerce dataset (COCO format)")
    p.add_argument("--out", required=True, help="output folder (must be new or empty)")
    p.add_argument("--products", type=int, help="number of catalog products (required)")
    p.add_argument("--scenes", type=int, help="number of scene images (required)")
    p.add_argument("--seed", type=int, default=0, help="seed; same seed, same dataset")
    p.add_argument("--size", default="480x640", help="scene size HxW (default 480x640)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=cmd_synth)

    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _model_args(
    p: argparse._ActionsContainer,
    *,
    recipe_help: str = f"recipe name or YAML file (default: the recipe stored in a siammatch "
    f"weights file, else {DEFAULT_RECIPE})",
    set_help: str = "recipe override, e.g. inference.match.scale_step=1.2 (repeatable)",
) -> None:
    """Add ``--recipe``, ``--weights``, ``--device`` and ``--set`` (read by
    :func:`_load_matcher`) to a parser or argument group."""
    p.add_argument("--recipe", help=recipe_help)
    p.add_argument("--weights", help="weights file (published checkpoint or siammatch file)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=set_help,
    )


def _parse_size(text: str, *, example: str) -> tuple[int, int]:
    """``--size HxW`` as ``(height, width)``; ``example`` is quoted in the error message.

    Raises:
        InvalidArgumentError: ``text`` is not ``HxW``.
    """
    from matcher.errors import InvalidArgumentError

    size = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if size is None:
        raise InvalidArgumentError(f"--size {text!r}: expected HxW, e.g. {example}")
    return int(size.group(1)), int(size.group(2))


def _load_matcher(args: argparse.Namespace):
    import matcher

    weights = args.weights
    if weights is not None and not os.path.isfile(weights):
        raise UsageError(f"weights file {weights!r} does not exist")
    recipe = args.recipe or (None if weights else DEFAULT_RECIPE)
    return matcher.load_trained(
        recipe,
        weights,
        device=args.device,
        overrides=args.overrides or None,
        hint="pass --weights FILE (a published checkpoint of that model or a siammatch checkpoint)",
    )


# -- match ------------------------------------------------------------------------------


def cmd_match(args: argparse.Namespace) -> int:
    import matcher
    from matcher.images import load_image, parse_box

    for path in (args.reference, args.scene):
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
    ref_box = parse_box(args.ref_box) if args.ref_box else None
    reference = matcher.Reference.from_image(args.reference, ref_box, id=Path(args.reference).stem)
    scene = load_image(args.scene)
    if args.output:
        _check_writable(args.output, IMAGE_SUFFIXES, "an image file")
    m = _load_matcher(args)
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

        _save_image(args.output, draw_instances(scene, result.instances))
        if not args.json:
            print(f"annotated scene written to {args.output}")
    return 0


# -- track ------------------------------------------------------------------------------


def cmd_track(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from api.render import draw_instances
    from matcher.images import parse_box
    from matcher.structures import Instance

    box = parse_box(args.box)
    frames, total = _frames(args.source)
    writer = _output_writer(args.output) if args.output else None
    m = _load_matcher(args)
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


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _frames(source: str) -> tuple[Iterator[np.ndarray], int | None]:
    from matcher.images import load_image

    path = Path(source)
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        if not files:
            raise UsageError(f"folder {source} holds no image files")
        return (load_image(p) for p in files), len(files)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise UsageError(
                f"{source} is neither a folder of frames nor a video "
                f"({', '.join(sorted(VIDEO_SUFFIXES))})"
            )
        import cv2

        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise UsageError(f"cannot open video {source}")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None

        def gen() -> Iterator[np.ndarray]:
            try:
                while True:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    yield np.ascontiguousarray(bgr[:, :, ::-1])
            finally:
                cap.release()

        return gen(), count
    raise UsageError(f"no such file or folder: {source}")


def _output_writer(output: str):
    """A ``write(index, rgb)`` callable; ``write(None, None)`` finishes."""
    import cv2

    path = Path(output)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        _check_writable(output, VIDEO_SUFFIXES, "a video file")
        state: dict = {}

        def write_video(index, rgb):
            if index is None:
                if "writer" in state:
                    state["writer"].release()
                return
            if "writer" not in state:
                h, w = rgb.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                state["writer"] = cv2.VideoWriter(str(path), fourcc, 25.0, (w, h))
                if not state["writer"].isOpened():
                    raise UsageError(f"cannot write video {output}")
            state["writer"].write(np.ascontiguousarray(rgb[:, :, ::-1]))

        return write_video
    if path.suffix:
        raise UsageError(
            f"-o {output}: give a video file ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder"
        )
    path.mkdir(parents=True, exist_ok=True)

    def write_frame(index, rgb):
        if index is not None:
            _save_image(str(path / f"{index:06d}.png"), rgb)

    return write_frame


# -- recipes / demo ---------------------------------------------------------------------


def cmd_recipes(args: argparse.Namespace) -> int:
    from matcher.builder import BASELINES
    from matcher.recipes import list_recipes, load_recipe

    rows = [(name, load_recipe(name)) for name in list_recipes()]
    rows += [(name, load_recipe(name)) for name in list_recipes("tiny")]
    width = max(len(r.family) for _, r in rows)
    for name, recipe in rows:
        print(f"{name:34s} {recipe.family:{width}s} {recipe.description}")
    for name in sorted(BASELINES):
        print(f"{name:34s} {'baseline':{width}s} classical matcher (OpenCV), no weights")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import matcher
    from api.demo import demo_pair
    from api.render import draw_instances

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    product, scene, truth = demo_pair(seed=args.seed)
    m = _load_matcher(args)
    reference = matcher.Reference.from_image(product, id="demo-product")
    result = m.match(reference, scene, max_instances=5)
    _save_image(str(out / "reference.png"), product)
    _save_image(str(out / "scene.png"), scene)
    _save_image(str(out / "result.png"), draw_instances(scene, result.instances))
    (out / "result.json").write_text(
        json.dumps({"recipe": m.name, "truth": truth, **result.to_dict()}, indent=2)
    )
    print(f"recipe {m.name}: {len(result.instances)} instance(s) found, {len(truth)} pasted")
    for inst in result.instances:
        print(f"  score {inst.score:.3f} box {', '.join(f'{v:.0f}' for v in inst.box)}")
    print(f"images and JSON written to {out}/")
    return 0


# -- synth ------------------------------------------------------------------------------


def cmd_synth(args: argparse.Namespace) -> int:
    from trainers.data.synth import generate

    if args.products is None or args.scenes is None:
        raise UsageError("synth needs --products and --scenes (or --video, see synth --help)")
    image_size = _parse_size(args.size, example="480x640")
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


# -- helpers ----------------------------------------------------------------------------


def _check_writable(output: str, suffixes: set[str], what: str) -> None:
    path = Path(output)
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"-o {output}: expected {what} ({', '.join(sorted(suffixes))})")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"-o {output}: folder {parent} does not exist")


def _save_image(path: str, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(rgb).save(path)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
