"""Speed of scoring VOT2018-sized tracker results (``siammatch eval tracking``).

Fixed workload, no images: 60 sequences of 21,356 frames in all (VOT2018's size; frames of
1280x720, 854x480 or 640x360; the truth a rotated rectangle of 8-35 % of the frame
height, drifting), and three trackers' supervised runs written in PySOT's result layout
into a temporary folder: boxes, SiamMask-style polygons and a loose box tracker, each with
about 50-150 failures (markers 1/2/0 as the VOT protocol writes them). Times
:func:`trainers.evaluate.tracking.scoring.score_trackers` — reading every result file,
the VOT region overlaps of every frame (rasterised as the VOT toolkit does, twice: bounds
``(w, h)`` for accuracy and ``(w - 1, h - 1)`` for EAO), accuracy, robustness and EAO for
the ``all`` tag and the six attribute tags.

    python benchmarks/tracking_scoring.py [--repeats 1]

Prints a Markdown table: wall and CPU seconds per scoring run. The issue's target: under
30 s on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import cpu_seconds

SEQUENCES = 60
FRAMES = 21_356
SIZES = ((1280, 720), (854, 480), (640, 360))
TRACKERS = {"boxes": ("box", 0.0025), "polygons": ("polygon", 0.0035), "loose": ("box", 0.007)}


def _lengths(rng: np.random.Generator) -> list[int]:
    raw = rng.uniform(40, 1500, SEQUENCES)
    lengths = np.maximum(41, np.floor(raw / raw.sum() * FRAMES)).astype(int)
    lengths[0] += FRAMES - lengths.sum()
    return lengths.tolist()


def _truth(rng: np.random.Generator, n: int, size: tuple[int, int]) -> np.ndarray:
    w_img, h_img = size
    height = h_img * rng.uniform(0.08, 0.35)
    width = height * rng.uniform(0.5, 2.0)
    centre = np.array([w_img, h_img]) * rng.uniform(0.3, 0.7, 2)
    out = np.zeros((n, 8))
    angle = rng.uniform(-0.5, 0.5)
    for i in range(n):
        centre = np.clip(centre + rng.normal(0, 3, 2), [0, 0], [w_img, h_img])
        angle += rng.normal(0, 0.01)
        c, s = math.cos(angle), math.sin(angle)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [width / 2, height / 2]
        out[i] = (corners @ np.array([[c, s], [-s, c]]) + centre).reshape(-1)
    return out


def _run_lines(rng: np.random.Generator, gt: np.ndarray, kind: str, rate: float) -> list[str]:
    lines: list[str] = []
    restart = 0
    for i, poly in enumerate(gt):
        if i < restart:
            lines.append("0")
        elif i == restart:
            lines.append("1")
        elif rng.random() < rate:
            lines.append("2")
            restart = i + 5
        else:
            xs, ys = poly[0::2], poly[1::2]
            x, y = xs.min(), ys.min()
            w, h = xs.max() - x, ys.max() - y
            jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
            if kind == "polygon":
                values = poly + np.repeat(jitter[:2], 4).reshape(2, 4).T.reshape(-1)
            else:
                values = np.array([x, y, w, h]) + jitter
            lines.append(",".join(f"{v:.4f}" for v in values))
    return lines


def build(root: Path, seed: int = 0):
    """The dataset (no images) and the three trackers' result files under ``root``."""
    from trainers.evaluate.tracking.datasets import (
        VOT_TAGS,
        Sequence,
        TrackingDataset,
        get_benchmark,
    )

    rng = np.random.default_rng(seed)
    bench = get_benchmark("VOT2018")
    sequences = []
    for k, n in enumerate(_lengths(rng)):
        size = SIZES[k % len(SIZES)]
        gt = _truth(rng, n, size)
        tags = {t: (rng.random(n) < 0.2).astype(np.int64) for t in VOT_TAGS}
        sequences.append(Sequence(f"seq{k:02d}", (), gt, tags=tags, image_size=size))
    for name, (kind, rate) in TRACKERS.items():
        for seq in sequences:
            folder = root / bench.name / name / "baseline" / seq.name
            folder.mkdir(parents=True, exist_ok=True)
            lines = _run_lines(rng, seq.gt, kind, rate)
            (folder / f"{seq.name}_001.txt").write_text("\n".join(lines) + "\n")
    return TrackingDataset(bench, root, tuple(sequences))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from trainers.evaluate.tracking.scoring import score_trackers

    with tempfile.TemporaryDirectory() as tmp:
        dataset = build(Path(tmp))
        rows = []
        for _ in range(args.repeats):
            start, cpu_start = time.perf_counter(), cpu_seconds()
            report = score_trackers(dataset, tmp)
            rows.append((time.perf_counter() - start, cpu_seconds() - cpu_start))
    print(
        f"VOT2018-sized scoring: {report['sequences']} sequences, {report['frames']} frames, "
        f"{len(report['trackers'])} trackers ({platform.processor() or platform.machine()}, "
        f"{platform.python_version()})"
    )
    print()
    print("| run | wall s | CPU s | " + " | ".join(f"{t} EAO / failures" for t in TRACKERS) + " |")
    print("|---|---:|---:|" + "---:|" * len(TRACKERS))
    for i, (wall, cpu) in enumerate(rows, 1):
        cells = " | ".join(
            f"{report['trackers'][t]['eao']:.3f} / {report['trackers'][t]['failures']:.0f}"
            for t in TRACKERS
        )
        print(f"| {i} | {wall:.1f} | {cpu:.1f} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
