"""Fixtures for training tests: small synthetic datasets generated once per session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable) -> Path:
    """A folder ``build(folder)`` fills once per test run, even under pytest-xdist: the
    workers share the run's base temp folder, the first one builds under a file lock and
    marks the folder complete, the others wait for it and reuse it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by every worker of this run
    folder = base / name
    with FileLock(base / f"{name}.lock"):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="session")
def synth_sets(tmp_path_factory) -> dict[str, Path]:
    """A small training set and a held-out set (other seed: other products and scenes)."""
    from trainers.data.synth import generate

    def build(root: Path) -> None:
        generate(root / "train", num_products=24, num_scenes=120, seed=21, workers=2)
        generate(root / "val", num_products=12, num_scenes=40, seed=22, workers=2)

    root = built_once(tmp_path_factory, "synth", build)
    return {"train": root / "train", "val": root / "val"}


def data_overrides(sets: dict[str, Path], *, modes: tuple[str, ...] = ("catalog", "instance")):
    """``key=value`` overrides pointing a tiny recipe at the session's datasets."""
    sources = ", ".join(
        f"{{kind: synth, root: {sets['train']}, pair_mode: {mode}}}" for mode in modes
    )
    return [
        f"train.data=[{sources}]",
        f"train.val_data=[{{kind: synth, root: {sets['val']}, pair_mode: catalog}}]",
    ]
