"""The weights shipped under ``weights/``: they load without a download, their cards are
complete, they work, and a short version of their training run reproduces the figure the
card states (the full runs take the better part of an hour on a CPU)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

import matcher
from tests.helpers import TEST_SEED, spread_line
from tests.trainers.conftest import data_overrides
from trainers.train import main as train_main

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
SHIPPED = ("siammask_small", "embedder_default")


def _card(name: str) -> dict:
    return json.loads((WEIGHTS / f"{name}.json").read_text())


@pytest.mark.parametrize("name", SHIPPED)
def test_cards_describe_the_files_next_to_them(name):
    card = _card(name)
    data = (WEIGHTS / card["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == card["sha256"]
    assert len(data) <= 30e6  # small enough to ship
    for key in ("recipe", "command", "data", "steps", "wall_time_s", "hardware", "validation"):
        assert card[key], key
    assert card["data"]["train"] and card["data"]["seed"] is not None
    short = card["short_run"]
    assert {"steps", "metric", "value", "tolerance", "command", "seed_spread"} <= set(short)
    assert {"last_logged", "last_logged_tolerance"} <= set(short["loss"])


def test_the_shipped_matcher_loads_without_a_weights_argument_and_gives_masks():
    from tests.helpers import clutter_scene, paste, product_image

    shipped = matcher.shipped_weights("siammask_small")
    assert shipped is not None
    implicit = matcher.load("siammask_small")  # no weights argument: the shipped file
    explicit = matcher.load("siammask_small", weights=shipped)
    for (name, a), (_, b) in zip(
        implicit.net.state_dict().items(), explicit.net.state_dict().items(), strict=True
    ):
        assert (a == b).all(), name
    scene = paste(clutter_scene(240, 320, seed=5), product_image("coffee"), (150, 80, 230, 160))
    result = implicit.match(matcher.Reference.from_image(product_image("coffee")), scene)
    for instance in result.instances:
        assert instance.mask is not None and instance.mask.shape == scene.shape[:2]


def _values(path: Path, key: str) -> list[float]:
    with open(path) as fh:
        return [float(r["value"]) for r in csv.DictReader(fh) if r["key"] == key]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_short_training_run_lands_within_the_cards_tolerance(tmp_path, synth_sets, name):
    card = _card(name)
    short = card["short_run"]
    modes = ("catalog", "instance") if card["family"] != "embedder" else ("catalog",)
    code = train_main(
        [card["recipe"], "--out", str(tmp_path), "--max-steps", str(short["steps"]),
         "--workers", "2", "--no-tensorboard", *short["overrides"], f"train.seed={TEST_SEED}",
         *data_overrides(synth_sets, modes=modes)]
    )  # fmt: skip
    assert code == 0
    losses = _values(tmp_path / "metrics.csv", "total")
    assert losses[-1] < losses[0]  # it learns
    value = _values(tmp_path / "metrics.csv", short["metric"])[-1]
    print(f"{name}: short run {short['metric']} = {value:.4f} (card: {short['value']})")
    print(spread_line(f"shipped[{name}]", value=value, first_loss=losses[0], last_loss=losses[-1]))
    # The card's value and tolerances come from the same run with train.seed 0..4
    # (short_run.seed_spread): the mean, and about 1.5x the largest deviation from it.
    assert abs(value - short["value"]) <= short["tolerance"], (value, short["value"])
    loss = short["loss"]
    assert abs(losses[-1] - loss["last_logged"]) <= loss["last_logged_tolerance"], losses[-1]
