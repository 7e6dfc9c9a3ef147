"""Throughput of the synthetic e-commerce generator (``siammatch synth``).

Fixed workload: 1,000 scenes of 480x640 and a 60-product catalog (seed 0, default scene
settings), written into a temporary folder that is deleted afterwards. Reports the wall
time of ``generate`` (from the call to the renamed, finished dataset: process start-up,
catalog rendering, scenes, JPEG/PNG writing and annotations.json included) and scenes/s.

    python benchmarks/synth_throughput.py [--scenes 1000] [--products 60] [--workers 2]

Prints a Markdown table: wall seconds, scenes/s, and the CPU seconds spent by this process
and its workers (on a shared machine the CPU time is the steadier figure). The issue's
target: 1,000 scenes in under 60 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import cpu_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--products", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", default="480x640", help="scene size HxW")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    # Imported here, not at the top: spawned workers re-import this script as their
    # __main__, and must not import matcher/torch through the generator's entry point.
    import json

    from trainers.data.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth"
        start = time.perf_counter()
        cpu_start = cpu_seconds()
        generate(
            out,
            num_products=args.products,
            num_scenes=args.scenes,
            seed=0,
            image_size=(height, width),
            workers=args.workers,
            progress=False,
        )
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        data = json.loads((out / "annotations.json").read_text())
        size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print("| scenes | size | products | workers | instances | wall s | scenes/s | CPU s | MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.scenes} | {height}x{width} | {args.products} | {args.workers} | "
        f"{len(data['annotations'])} | {seconds:.1f} | {args.scenes / seconds:.1f} | "
        f"{cpu:.1f} | {size_mb:.0f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
