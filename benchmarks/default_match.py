"""Latency of the default matcher per 640x480 match, and what each stage costs.

Fixed workload: scikit-image's astronaut (a 280x260 crop) as the product, pasted with a
perspective warp into 640x480 photos (coffee, chelsea, rocket, camera), plus the same
scenes without it; the shipped ``siammask_small`` at its operating threshold, with the
stages switched off one at a time in the same run (the ratios are what to compare on a
shared CPU). Each figure is the median over scenes x repeats after one warm-up call;
reference encoding is included (a one-shot query). A second table times the
template-matching stage's proposal search alone (scene preparation and one proposal,
``matcher.inference.ncc.NccVerifier``) with the shipped product-size range and with the
earlier one (from 10 % of the shorter side, at most 2x enlarged), alternating.

    python benchmarks/default_match.py [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
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

VARIANTS = {
    "default (search + embedder + geometric + template + calibration)": [],
    "without template matching (uncalibrated score)": [
        "inference.match.template=false",
        "inference.match.calibration=",
    ],
    "without template matching and the geometric stage": [
        "inference.match.template=false",
        "inference.match.geometric=false",
        "inference.match.calibration=",
        "inference.match.score_threshold=0.75",
    ],
    "without template matching, the geometric stage and the embedder": [
        "inference.match.template=false",
        "inference.match.geometric=false",
        "inference.match.calibration=",
        "inference.match.verifier=",
        "inference.match.score_threshold=0.6",
    ],
}


def _scenes() -> tuple[np.ndarray, list[np.ndarray]]:
    product = skimage.data.astronaut()[20:300, 120:380]
    h, w = product.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[300, 90], [480, 120], [470, 320], [310, 290]])
    homography = cv2.getPerspectiveTransform(src, dst)
    scenes = []
    for name in ("coffee", "chelsea", "rocket", "camera"):
        photo = getattr(skimage.data, name)()
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=2)
        photo = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
        warped = cv2.warpPerspective(product, homography, (640, 480))
        inside = cv2.warpPerspective(np.ones((h, w), np.uint8), homography, (640, 480)) > 0
        with_product = photo.copy()
        with_product[inside] = warped[inside]
        scenes += [with_product, photo]
    return product, scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    product, scenes = _scenes()
    print(f"{platform.processor() or platform.machine()}, {args.threads} torch threads")
    print("| matcher | median ms/match | vs default | found in product scenes |")
    print("|---|---:|---:|---:|")
    base = None
    for label, overrides in VARIANTS.items():
        m = matcher.load("siammask_small", overrides=overrides)
        m.match(matcher.Reference.from_image(product), scenes[0])  # warm-up
        times, found = [], 0
        for _ in range(args.repeats):
            for i, scene in enumerate(scenes):
                start = time.perf_counter()
                result = m.match(matcher.Reference.from_image(product), scene)
                times.append((time.perf_counter() - start) * 1000.0)
                found += int(i % 2 == 0 and result.best is not None)
        median = statistics.median(times)
        base = base or median
        total = args.repeats * len(scenes) // 2
        print(f"| {label} | {median:.0f} | {median / base:.2f} | {found}/{total} |")
    _proposal_search(product, scenes, args.repeats)


NCC_RANGES = {
    "shipped (from 5 % of the shorter side, at most 2.5x enlarged)": {},
    "earlier (from 10 %, at most 2x enlarged)": {"min_object_fraction": 0.1, "max_upscale": 2.0},
}


def _proposal_search(product: np.ndarray, scenes: list[np.ndarray], repeats: int) -> None:
    """Median ms of the template stage's scene preparation and one proposal, per range."""
    from matcher.inference.ncc import NccParams, NccVerifier

    stages = {label: NccVerifier(NccParams(**kw)) for label, kw in NCC_RANGES.items()}
    refs = {label: v.encode_reference(matcher.Reference.from_image(product))
            for label, v in stages.items()}  # fmt: skip
    times: dict[str, list[float]] = {label: [] for label in stages}
    for _ in range(repeats):
        for scene in scenes:
            for label, stage in stages.items():  # alternating, so drift hits both alike
                start = time.perf_counter()
                stage.proposals(refs[label], stage.prepare_scene(scene), 1)
                times[label].append((time.perf_counter() - start) * 1000.0)
    print()
    print("| template proposals | median ms (scene preparation + 1 proposal) |")
    print("|---|---:|")
    for label, values in times.items():
        print(f"| {label} | {statistics.median(values):.0f} |")


if __name__ == "__main__":
    main()
