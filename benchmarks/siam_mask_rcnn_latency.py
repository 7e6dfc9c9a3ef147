"""Siamese Mask R-CNN latency on CPU: one 640x480 scene against 1 and 5 references.

Fixed workload: ``siam_mask_rcnn_r50`` (ResNet-50-FPN, scenes resized to 1024x768, 192 px
references) with its initial (untrained) weights, a deterministic cluttered 640x480
scene and crops of scikit-image photos as references. The scene's backbone runs once per
call whatever the number of references; the fusion, RPN and heads run once per
reference. Two settings: the recipe's score threshold (an untrained network keeps no
instance, so no mask is pasted) and ``score_threshold=0, max_instances=20`` (20
instances per reference, each with its scene-sized mask and polygon). References are
encoded beforehand (``encode_reference`` is timed on its own). Each figure is the median
of ``--repeats`` runs after one warm-up run, wall-clock and CPU time of the process.

    python benchmarks/siam_mask_rcnn_latency.py [--repeats N] [--threads N] [--recipe NAME]

Prints a Markdown table. On a shared machine compare CPU times, not wall times.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matcher

REFERENCE_COUNTS = (1, 5)


def _scene() -> np.ndarray:
    """640x480 RGB: tiles of sample photos."""
    rng = np.random.default_rng(0)
    tiles = [skimage.data.rocket(), skimage.data.chelsea(), skimage.data.astronaut()]
    scene = np.zeros((480, 640, 3), np.uint8)
    for y in range(0, 480, 96):
        for x in range(0, 640, 96):
            src = tiles[rng.integers(len(tiles))]
            sy, sx = rng.integers(0, src.shape[0] - 96), rng.integers(0, src.shape[1] - 96)
            tile = src[sy : sy + 96, sx : sx + 96, :3]
            scene[y : y + 96, x : x + 96] = tile[: 480 - y, : 640 - x]
    return scene


def _references(count: int) -> list[matcher.Reference]:
    photo = skimage.data.coffee()
    return [
        matcher.Reference.from_image(photo, (40 + 30 * i, 60, 260 + 30 * i, 300), id=str(i))
        for i in range(count)
    ]


def _median(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``fn`` after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="siam_mask_rcnn_r50")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = matcher.build(args.recipe, device="cpu")
    det = m.recipe.model.detection
    scene = _scene()
    load = os.getloadavg()[0]
    print(
        f"# {args.recipe} latency — {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (load {load:.1f}), {args.threads} torch threads, "
        f"torch {torch.__version__}; scene 640x480 -> {det.max_size}x{det.max_size * 3 // 4}, "
        f"references {det.reference_size} px, untrained weights, median of {args.repeats}\n"
    )
    print(
        "| references | encode_reference, each (ms) | match_many, default threshold (ms) "
        "| match_many, 20 instances + masks each (ms) | CPU (ms) default / 20 inst. |"
    )
    print("|---|---|---|---|---|")
    for count in REFERENCE_COUNTS:
        refs = _references(count)
        encode, _ = _median(lambda r=refs[0]: m.encode_reference(r), args.repeats)
        feats = [m.encode_reference(r) for r in refs]
        plain = _median(lambda f=feats: m.match_many(f, scene), args.repeats)
        many = _median(
            lambda f=feats: m.match_many(f, scene, score_threshold=0.0, max_instances=20),
            args.repeats,
        )
        print(
            f"| {count} | {encode * 1e3:.0f} | {plain[0] * 1e3:.0f} | {many[0] * 1e3:.0f} "
            f"| {plain[1] * 1e3:.0f} / {many[1] * 1e3:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
