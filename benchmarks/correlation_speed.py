"""Colour template matching: OpenCV's three-channel ``TM_CCOEFF_NORMED`` against the
channel-split computation of :mod:`matcher.baselines.correlation` (issue 15, fourth step).

Fixed workload:

* *levels*: a 32x24 and a 20x32 pattern cut from scikit-image's ``astronaut`` and
  ``coffee`` photos, correlated over the photo resized (INTER_AREA) to 640x480, 320x240
  and 70x60; per size, the median CPU ms of one correlation each way (the level prepared
  once, as a pyramid level is) and the largest difference between the two responses;
* *stage*: the default's template-matching stage (:class:`matcher.inference.ncc.NccVerifier`)
  on ``benchmarks/match_speed.py``'s scene and 16 references: proposals (the pyramid
  search) and the evidence of two boxes per reference, CPU ms per reference each way,
  whether the proposed boxes are the same and how far the peak and evidence values differ.

OpenCV runs on one thread (``cv2.setNumThreads(1)``), like the stage's calls on match
mode's threads.

    python benchmarks/correlation_speed.py [--repeats N]
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import skimage.data  # noqa: E402

from benchmarks._common import opencv_correlation  # noqa: E402

SIZES = ((640, 480), (320, 240), (70, 60))


def _cpu_ms(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times), out


def _correlate(on: bool, image, grey, pattern, prepared):
    from matcher.baselines.correlation import correlate

    opencv_correlation(on)
    return correlate(image, grey, pattern, min_std=3.0, prepared=prepared)


def levels(repeats: int) -> None:
    from matcher.baselines.correlation import prepare
    from matcher.baselines.template import as_channels

    print("| level | OpenCV ms | split ms | split/OpenCV | max difference |")
    print("|---|---:|---:|---:|---:|")
    for width, height in SIZES:
        old, new, diff = [], [], 0.0
        for name in ("astronaut", "coffee"):
            rgb = cv2.resize(getattr(skimage.data, name)(), (width, height), cv2.INTER_AREA)
            image, grey = as_channels(rgb, colour=True)
            prepared = prepare(image, grey)
            for y, x, th, tw in ((height // 3, width // 4, 32, 24), (5, 5, 20, 32)):
                pattern = np.ascontiguousarray(image[y : y + th, x : x + tw]) * 0.9 + 7.0

                args = (image, grey, pattern, prepared)
                t_old, r_old = _cpu_ms(lambda a=args: _correlate(True, *a), repeats)
                t_new, r_new = _cpu_ms(lambda a=args: _correlate(False, *a), repeats)
                old.append(t_old)
                new.append(t_new)
                diff = max(diff, float(np.abs(r_old - r_new).max()))
        a, b = statistics.median(old), statistics.median(new)
        print(f"| {width}x{height} | {a:.2f} | {b:.2f} | {b / a:.2f} | {diff:.1e} |")


def stage(repeats: int) -> None:
    import matcher
    from benchmarks.match_speed import _others
    from benchmarks.matcher_latency import _scene
    from matcher.inference.ncc import NccVerifier

    product, scene = _scene()
    refs = [matcher.Reference.from_image(p) for p in [product, *_others(15)]]
    ncc = NccVerifier()
    encoded = [ncc.encode_reference(r) for r in refs]
    boxes = ((100, 100, 220, 220), (300, 50, 360, 130))

    def run(on: bool):
        opencv_correlation(on)
        prepared = ncc.prepare_scene(scene)  # a new pyramid: levels rendered in the timing
        props = [ncc.proposals(r, prepared, 1) for r in encoded]
        scores = [ncc.score(r, prepared, b) for r in encoded for b in boxes]
        return props, scores

    t_old, (p_old, s_old) = _cpu_ms(lambda: run(True), repeats)
    t_new, (p_new, s_new) = _cpu_ms(lambda: run(False), repeats)
    n = len(encoded)
    boxes_same = all(
        len(a) == len(b) and all(x[0] == y[0] for x, y in zip(a, b, strict=True))
        for a, b in zip(p_old, p_new, strict=True)
    )
    pairs = [(x, y) for a, b in zip(p_old, p_new, strict=True) for x, y in zip(a, b, strict=False)]
    peak = max((abs(x[1] - y[1]) for x, y in pairs), default=0.0)
    evidence = max(abs(a - b) for a, b in zip(s_old, s_new, strict=True))
    print(
        f"\nTemplate-matching stage, 16 references: OpenCV {t_old / n:.1f} ms per reference, "
        f"split {t_new / n:.1f} ({t_new / t_old:.2f}x); same proposed boxes: {boxes_same} "
        f"(largest peak difference {peak:.1e}); largest evidence difference {evidence:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(
        f"# colour correlation — {platform.processor() or platform.machine()}, OpenCV "
        f"{cv2.__version__} on 1 thread, median of {args.repeats} CPU times\n"
    )
    levels(args.repeats)
    stage(args.repeats)
    opencv_correlation(False)


if __name__ == "__main__":
    main()
