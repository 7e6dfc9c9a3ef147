"""Fixtures for training tests: small synthetic datasets generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_sets(tmp_path_factory) -> dict[str, Path]:
    """A small training set and a held-out set (other seed: other products and scenes)."""
    from trainers.data.synth import generate

    root = tmp_path_factory.mktemp("synth")
    train = generate(root / "train", num_products=24, num_scenes=120, seed=21, workers=2)
    val = generate(root / "val", num_products=12, num_scenes=40, seed=22, workers=2)
    return {"train": train, "val": val}


def data_overrides(sets: dict[str, Path], *, modes: tuple[str, ...] = ("catalog", "instance")):
    """``key=value`` overrides pointing a tiny recipe at the session's datasets."""
    sources = ", ".join(
        f"{{kind: synth, root: {sets['train']}, pair_mode: {mode}}}" for mode in modes
    )
    return [
        f"train.data=[{sources}]",
        f"train.val_data=[{{kind: synth, root: {sets['val']}, pair_mode: catalog}}]",
    ]
