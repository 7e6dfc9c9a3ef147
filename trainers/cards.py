"""Shipping a trained run: copy its final weights under ``weights/`` with a JSON card.

A card records what a user needs to trust and reproduce the file: the recipe (name and
resolved values), the training data (sources and their seeds), the steps run, the wall
time and the hardware, the last held-out validation values of the run, any evaluation
figures measured afterwards, the command that trained it, and the file's SHA-256.

    python -m trainers.cards runs/siammask_small --name siammask_small \\
        --command "siammatch train siammask_small --out runs/siammask_small" \\
        [--metrics eval.json] [--note "..."]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[1]


def last_values(metrics_csv: Path) -> tuple[int, dict[str, float]]:
    """The last step of a run's ``metrics.csv`` and the last value of every ``val_`` key."""
    steps, values = 0, {}
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            steps = max(steps, int(row["step"]))
            if row["key"].startswith("val_"):
                values[row["key"]] = float(row["value"])
    return steps, values


def hardware() -> dict[str, Any]:
    """Where this process runs: CPU, core count, torch version and device."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def write_card(
    run_dir: Path,
    *,
    name: str,
    command: str,
    metrics: dict[str, Any] | None = None,
    note: str = "",
    out_dir: Path | None = None,
) -> Path:
    """Copy ``run_dir/model.pth`` to ``out_dir/<name>.pth`` and write ``<name>.json``.

    Returns:
        The card's path.

    Raises:
        FileNotFoundError: the run has no ``model.pth``, ``recipe.yaml`` or ``metrics.csv``.
    """
    out_dir = out_dir or PROJECT / "weights"
    model, recipe_file, metrics_csv = (
        run_dir / "model.pth",
        run_dir / "recipe.yaml",
        run_dir / "metrics.csv",
    )
    for path in (model, recipe_file, metrics_csv):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: is {run_dir} a finished training run?")
    recipe = yaml.safe_load(recipe_file.read_text())
    steps, validation = last_values(metrics_csv)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.pth"
    shutil.copyfile(model, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    train = recipe.get("train", {})
    card = {
        "name": name,
        "file": target.name,
        "sha256": digest,
        "size_mb": round(target.stat().st_size / 1e6, 2),
        "recipe": recipe.get("name"),
        "family": recipe.get("family"),
        "command": command,
        "data": {
            "train": train.get("data"),
            "validation": train.get("val_data"),
            "seed": train.get("seed"),
        },
        "steps": steps,
        "batch_size": train.get("batch_size"),
        "wall_time_s": round(model.stat().st_mtime - recipe_file.stat().st_mtime, 1),
        "hardware": hardware(),
        "validation": validation,
        "metrics": metrics or {},
        "note": note,
        "resolved_recipe": recipe,
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ship a training run's weights with a card.")
    parser.add_argument("run", type=Path, help="the run folder (has model.pth)")
    parser.add_argument("--name", required=True, help="file stem under weights/")
    parser.add_argument("--command", required=True, help="the command that trained it")
    parser.add_argument("--metrics", type=Path, help="JSON file of evaluation figures")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    try:
        path = write_card(
            args.run, name=args.name, command=args.command, metrics=metrics, note=args.note
        )
    except FileNotFoundError as exc:
        print(f"cards: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
