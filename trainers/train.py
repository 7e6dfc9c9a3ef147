"""Train a recipe: ``siammatch train RECIPE [key=value ...]`` or, for DDP,
``torchrun --nproc_per_node K -m trainers.train RECIPE [key=value ...]``.

The run writes to ``--out`` (default ``runs/<recipe>/<timestamp>``): the resolved recipe
(``recipe.yaml``), ``metrics.csv`` and TensorBoard logs (``tb/``), checkpoints
(``step_<N>.pth``, ``last.pth``; resume with ``--resume PATH`` or ``--resume auto``) and
the final ``model.pth``, all in this project's checkpoint format, so
``matcher.load(weights="runs/.../model.pth")`` serves the result. ``--init WEIGHTS`` starts
from a published or siammatch checkpoint of the recipe's model (fine-tuning).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml

logger = logging.getLogger("trainers.train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siammatch train", description="Train a matcher recipe on pair datasets."
    )
    parser.add_argument("recipe", help="recipe name (configs/), tiny/<name>, or a YAML file")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. train.epochs=5"
    )
    parser.add_argument("--out", help="output folder (default runs/<recipe>/<timestamp>)")
    parser.add_argument("--resume", help="checkpoint to resume from, or 'auto' (OUT/last.pth)")
    parser.add_argument("--init", help="initial weights (published or siammatch checkpoint)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps")
    parser.add_argument("--workers", type=int, help="data-loading processes per process")
    parser.add_argument("--no-tensorboard", action="store_true", help="CSV logs only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user mistakes, with a one-line message)."""
    args = build_parser().parse_intermixed_args(argv)
    from matcher.errors import SiammatchError

    try:
        run(args)
    except (SiammatchError, FileNotFoundError) as exc:
        print(f"siammatch: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace) -> Path:
    """Set up and train; returns the output folder."""
    from matcher.checkpoints.io import fit_state_dict, read_checkpoint
    from matcher.checkpoints.layouts import get_layout
    from matcher.errors import CheckpointError
    from trainers.distributed import barrier, setup, teardown
    from trainers.hooks import (
        CheckpointHook,
        MetricsLogHook,
        ProgressHook,
        ReplicaCheckHook,
        ValidationHook,
    )
    from trainers.loop import Trainer
    from trainers.tasks import build_task, load_training_recipe, training_recipe_from_dict

    ctx = setup(args.device)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else (logging.INFO if ctx.is_main else logging.WARNING),
        format=f"%(asctime)s [rank {ctx.rank}] %(levelname)s %(name)s: %(message)s",
    )
    try:
        resume = None
        out_dir = Path(args.out) if args.out else None
        if args.resume:
            if args.resume == "auto":
                if out_dir is None:
                    raise CheckpointError("--resume auto needs --out (the run folder)")
                path = out_dir / "last.pth"
            else:
                path = Path(args.resume)
                out_dir = out_dir or path.parent
            resume = read_checkpoint(path)
            if "training" not in resume.extra:
                raise CheckpointError(f"{path} holds no training state (not a training checkpoint)")
        if resume is not None and resume.recipe is not None and not args.overrides:
            recipe = training_recipe_from_dict(resume.recipe)
        else:
            recipe = load_training_recipe(args.recipe, list(args.overrides))
        cfg = recipe.train
        if out_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out_dir = Path("runs") / recipe.name.replace("/", "_") / stamp
        torch.manual_seed(cfg.seed)  # identical initial weights in every process
        task = build_task(recipe, ctx.device)
        if args.init:
            init = read_checkpoint(args.init)
            layout = get_layout(
                "siammatch" if init.recipe is not None else recipe.checkpoint_layout
            )
            state = fit_state_dict(
                task.net, init.state_dict, layout=layout, recipe_name=recipe.name, source=args.init
            )
            task.net.load_state_dict(state, strict=True)
        train_data = task.build_data(
            split="train", epoch_length=cfg.steps_per_epoch * cfg.batch_size * ctx.world_size
        )
        val_data = task.build_data(split="val", epoch_length=None)
        log = MetricsLogHook(every=cfg.log_every, tensorboard=not args.no_tensorboard)
        hooks = [
            ProgressHook(),
            log,
            ValidationHook(every=cfg.val_every, log=log),
            CheckpointHook(every=cfg.checkpoint_every),
            ReplicaCheckHook(every=cfg.checkpoint_every, log=log),
        ]
        trainer = Trainer(
            recipe=recipe,
            task=task,
            train_data=train_data,
            val_data=val_data,
            ctx=ctx,
            out_dir=out_dir,
            hooks=hooks,
            max_steps=args.max_steps,
            workers=args.workers,
        )
        if resume is not None:
            trainer.resume(resume.extra["training"], resume.state_dict)
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            logger.info("training %s for %d steps into %s", recipe.name, trainer.max_steps, out_dir)
        trainer.train()
        # every process finishes before any closes its gloo connections: one that left while
        # the other still used them made both abort at exit ("terminate called without an
        # active exception", seen once on a loaded CPU); on an error, leave at once instead
        barrier(ctx)
        return out_dir
    finally:
        teardown(ctx)


if __name__ == "__main__":  # pragma: no cover - torchrun -m trainers.train
    raise SystemExit(main())
