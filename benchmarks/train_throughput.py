"""Training throughput per recipe: pairs per second of the optimizer step alone (fixed
in-memory batch) and of the whole pipeline (synthetic-data loading + augmentation +
targets + step), on CPU, and on GPU when one is available.

Fixed workload: a synthetic e-commerce set of 24 products / 120 scenes (seed 21) generated
into a temporary folder, 2 data workers, the recipe's batch size, 5 warm-up steps then
``--steps`` timed steps.

    python benchmarks/train_throughput.py [--recipes tiny/siamfc_alexnet,...] [--steps N]
        [--device cpu|cuda]

Prints a Markdown table. On shared CPUs compare recipes within one run.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT = "tiny/siamfc_alexnet,tiny/siamrpn_alexnet,tiny/siamfcpp_alexnet,tiny/siammask_r50"


def bench(name: str, data: Path, steps: int, device: str) -> dict[str, float]:
    import torch

    from matcher.recipes import load_recipe
    from trainers.distributed import DistContext
    from trainers.loop import Trainer
    from trainers.tasks import build_task

    overrides = [
        f"train.data=[{{kind: synth, root: {data}, pair_mode: catalog}}]",
        "train.val_data=[]",
    ]
    recipe = load_recipe(name, overrides)
    torch.manual_seed(0)
    dev = torch.device(device)
    task = build_task(recipe, dev)
    dataset = task.build_data(split="train", epoch_length=(steps + 10) * recipe.train.batch_size)
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=dev, backend=None)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            recipe=recipe, task=task, train_data=dataset,
            val_data=None, ctx=ctx, out_dir=Path(out), max_steps=10**9, workers=2,
        )  # fmt: skip
        trainer._set_frozen(False)
        loader = iter(trainer._loader(0, 0))
        batch = next(loader)
        for _ in range(5):
            trainer.run_step(batch)
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.run_step(batch)
        sync()
        step_only = steps * recipe.train.batch_size / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.run_step(next(loader))
        sync()
        pipeline = steps * recipe.train.batch_size / (time.perf_counter() - start)
    return {"batch": recipe.train.batch_size, "step": step_only, "pipeline": pipeline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=DEFAULT)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    from trainers.data.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        data = generate(Path(tmp) / "synth", num_products=24, num_scenes=120, seed=21)
        print(
            f"# training throughput — {platform.machine()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, device {args.device}\n"
        )
        print("| recipe | batch | step only (pairs/s) | with data pipeline (pairs/s) |")
        print("|---|---|---|---|")
        for name in args.recipes.split(","):
            r = bench(name, data, args.steps, args.device)
            print(f"| {name} | {r['batch']} | {r['step']:.1f} | {r['pipeline']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
