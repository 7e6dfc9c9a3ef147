"""Throughput of the training-pair dataset (``trainers.data.build_pair_dataset``).

Fixed workload: a synthetic e-commerce set (default 40 products, 200 scenes of 480x640,
seed 0) generated into a temporary folder, read as a ``synth`` source in the given pair
mode; 127-pixel templates, 255-pixel searches, context 0.5, PySOT-like augmentation
(template shift 4 / scale 0.05, search shift 64 / scale 0.18, colour 1, blur 0.2,
motion blur 0.2, flip 0.5, grey 0.1) and 20 % negatives, half of them look-alikes. The
pairs are read through a ``DataLoader`` (batch 28, default collate) with each worker
count, after one warm-up batch; the first epoch is timed, so nothing is cached.

    python benchmarks/data_throughput.py [--pairs 1120] [--workers 0 2] [--mode catalog]

Prints a Markdown table: pairs/s (wall) and the CPU seconds per 1,000 pairs spent by this
process and its workers (on a shared machine the CPU figure is the steadier one).
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
    parser.add_argument("--pairs", type=int, default=1120, help="pairs timed per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--mode", default="catalog", choices=["instance", "category", "catalog"])
    parser.add_argument("--products", type=int, default=40)
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--batch", type=int, default=28)
    args = parser.parse_args()
    # Imported here, not at the top: the generator's spawned workers re-import this
    # script as their __main__ and must not import torch through it.
    import torch
    from torch.utils.data import DataLoader

    from matcher.train_config import AugmentConfig, DataSourceConfig, TrainConfig
    from trainers.data import build_pair_dataset

    augment = AugmentConfig(blur=0.2, motion_blur=0.2, flip=0.5, gray=0.1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = DataSourceConfig(
            kind="synth",
            root=str(Path(tmp) / "synth"),
            pair_mode=args.mode,
            products=args.products,
            scenes=args.scenes,
        )
        train = TrainConfig(data=(source,), augment=augment, negative_ratio=0.2, workers=2, seed=0)
        for workers in args.workers:
            dataset = build_pair_dataset(
                train,
                exemplar_size=127,
                search_size=255,
                context_amount=0.5,
                split="train",
                epoch_length=args.pairs + args.batch,
            )
            loader = DataLoader(dataset, batch_size=args.batch, num_workers=workers)
            batches = iter(loader)
            next(batches)  # warm-up: worker start-up and first reads
            start, cpu_start = time.perf_counter(), cpu_seconds()
            count = sum(int(batch["label"].numel()) for batch in batches)
            seconds = time.perf_counter() - start
            del batches  # joins the workers, so their CPU time is counted
            cpu = cpu_seconds() - cpu_start
            rows.append((workers, count, seconds, cpu))
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(f"# synth {args.products} products / {args.scenes} scenes, mode {args.mode}")
    print("| workers | pairs | wall s | pairs/s | CPU s / 1000 pairs |")
    print("|---|---|---|---|---|")
    for workers, count, seconds, cpu in rows:
        print(
            f"| {workers} | {count} | {seconds:.1f} | {count / seconds:.0f} | "
            f"{1000 * cpu / count:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
