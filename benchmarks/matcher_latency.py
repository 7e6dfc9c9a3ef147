"""Matcher latency per recipe: encode_reference, track and match on a 640x480 scene, and
the cost of matching 16 references in one pass relative to one.

Fixed workload: the ``coffee`` product from scikit-image (200x200) as reference, a
deterministic 640x480 cluttered scene with it pasted at 120 px, default recipe settings.
Recipes with shipped weights run them as ``load_trained`` serves them; the others get
seeded random weights (latency does not depend on the values, except for the number of
candidates decoded), prepared for inference as ``load_trained`` would prepare a
published checkpoint (``--as-loaded``: the network as built, unprepared).
``match_many(16)`` matches the product and 15 crops of other scikit-image photographs
(``benchmarks/match_speed.py``'s references: distinct, mostly absent, as in a catalog
search). Each figure is the median of several runs after one warm-up run.
``--weights RECIPE=PATH`` (repeatable) loads a checkpoint of that recipe's layout instead
(a ``configs/proxy/`` stand-in's ``last.pth``): with random weights the coarse-to-fine
search's refinement has almost nothing to refine, and a mask recipe keeps an instance
for every reference.

    python benchmarks/matcher_latency.py [--recipes a,b] [--repeats N] [--threads N]
        [--as-loaded] [--weights RECIPE=PATH]

Prints a Markdown table, then, for recipes with masks (SiamMask), the extra cost of the
mask path over the box-only path of the same network: match mode with and without the
per-instance mask pass (5 instances), tracking with and without the mask/refine step. On
shared CPUs compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matcher
from benchmarks._common import add_weights_option, load_as_served, weights_by_recipe


def _scene() -> tuple[np.ndarray, np.ndarray]:
    product = skimage.data.coffee()[90:290, 180:380].copy()
    rng = np.random.default_rng(0)
    tiles = [skimage.data.rocket(), skimage.data.chelsea(), skimage.data.astronaut()]
    scene = np.zeros((480, 640, 3), np.uint8)
    for y in range(0, 480, 96):
        for x in range(0, 640, 96):
            src = tiles[rng.integers(len(tiles))]
            sy, sx = rng.integers(0, src.shape[0] - 96), rng.integers(0, src.shape[1] - 96)
            scene[y : y + 96, x : x + 96] = src[sy : sy + 96, sx : sx + 96, :3][
                : 480 - y, : 640 - x
            ]
    scene[200:320, 300:420] = cv2.resize(product, (120, 120), interpolation=cv2.INTER_AREA)
    return product, scene


def _median(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(m: matcher.SiameseMatcher, repeats: int) -> dict[str, float]:
    """Encode, track, match and ``match_many(16)`` times of one loaded matcher."""
    from benchmarks.match_speed import _others  # imports this module: not at the top

    product, scene = _scene()
    ref = matcher.Reference.from_image(product)
    refs16 = [ref, *(matcher.Reference.from_image(p) for p in _others(15))]
    feats = m.encode_reference(ref)
    tracker = m.tracker()
    tracker.init(scene, (300, 200, 420, 320))
    out = {
        "encode_reference": _median(lambda: m.encode_reference(ref), repeats * 3),
        "track": _median(lambda: tracker.track(scene), repeats * 3),
        "match": _median(lambda: m.match(feats, scene), repeats),
    }
    feats16 = [m.encode_reference(r) for r in refs16]
    out["match_many16"] = _median(lambda: m.match_many(feats16, scene), max(1, repeats // 2))
    out["ratio"] = out["match_many16"] / out["match"]
    return out


def bench_masks(m: matcher.SiameseMatcher, repeats: int) -> dict[str, float] | None:
    """Box-only vs mask path of a loaded mask recipe (``None`` for box-only recipes)."""
    from matcher.inference.rpn_tracker import PySOTTracker

    if m.masker is None:
        return None
    product, scene = _scene()
    feats = m.encode_reference(matcher.Reference.from_image(product))
    kwargs = {"max_instances": 5, "score_threshold": 0.0}
    with_masks = _median(lambda: m.match(feats, scene, **kwargs), repeats)
    masker, m.masker = m.masker, None
    box_only = _median(lambda: m.match(feats, scene, **kwargs), repeats)
    m.masker = masker
    mask_tracker = m.tracker()
    box_tracker = PySOTTracker(
        m.net, mask_tracker.params, input_format=mask_tracker.input_format, device=m.device
    )
    times = {}
    for key, tracker in (("track_mask", mask_tracker), ("track_box", box_tracker)):
        tracker.init(scene, (300, 200, 420, 320))
        times[key] = _median(lambda t=tracker: t.track(scene), repeats * 3)
    return {"match_box": box_only, "match_mask": with_masks, **times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    trackers = [n for n in matcher.list_recipes() if matcher.load_recipe(n).inference.track]
    parser.add_argument("--recipes", default=",".join(trackers))  # Siamese trackers
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--as-loaded", action="store_true", help="time unprepared networks")
    add_weights_option(parser)
    args = parser.parse_args()
    weights = weights_by_recipe(parser, args.weights)
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)
    print(
        f"# matcher latency — {platform.processor() or platform.machine()}, "
        f"{args.threads} torch threads, torch {torch.__version__}, device {args.device}, "
        f"{'as loaded' if args.as_loaded else 'prepared as load_trained serves'}\n"
    )
    print(
        "| recipe | encode_reference (ms) | track (ms) | match 640x480 (ms) "
        "| match_many(16) (ms) | match_many(16) / match(1) |"
    )
    print("|---|---|---|---|---|---|")
    rows = []
    for name in args.recipes.split(","):  # each recipe loaded once, for both tables
        m = load_as_served(
            name, device=args.device, prepare=not args.as_loaded, weights=weights.get(name)
        )
        r = bench(m, args.repeats)
        label = f"{name} (trained)" if name in weights else name
        print(
            f"| {label} | {r['encode_reference'] * 1e3:.1f} | {r['track'] * 1e3:.1f} | "
            f"{r['match'] * 1e3:.0f} | {r['match_many16'] * 1e3:.0f} | {r['ratio']:.2f} |",
            flush=True,
        )
        masks = bench_masks(m, args.repeats)
        if masks is not None:
            rows.append((name, masks))
    if rows:
        print(
            "\n| recipe | match box-only (ms) | match + 5 masks (ms) | extra | track box-only (ms) "
            "| track + mask (ms) | extra |"
        )
        print("|---|---|---|---|---|---|---|")
        for n, r in rows:
            print(
                f"| {n} | {r['match_box'] * 1e3:.0f} | {r['match_mask'] * 1e3:.0f} | "
                f"{r['match_mask'] / r['match_box'] - 1:+.0%} | {r['track_box'] * 1e3:.1f} | "
                f"{r['track_mask'] * 1e3:.1f} | {r['track_mask'] / r['track_box'] - 1:+.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
