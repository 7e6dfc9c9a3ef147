"""Fitting the calibrated match score (``siammatch calibrate``) on a tiny real-format set."""

from __future__ import annotations

import json

import numpy as np
import pytest

import matcher
from api.cli import main
from matcher.inference.fusion import FEATURES, Calibration
from tests.trainers.real_set_helpers import write_tiny_real_set
from trainers.calibrate import collect_samples, fit_split


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_real")
    write_tiny_real_set(root)
    return root


@pytest.fixture(scope="module")
def geometric_default():
    return matcher.load(
        "siammask_small",
        overrides=["inference.match.geometric=true", "inference.match.calibration="],
    )


def test_samples_are_labelled_by_overlap_and_the_fit_ranks_them(tiny_set, geometric_default):
    samples = collect_samples(geometric_default, tiny_set, split="test")
    doc = json.loads((tiny_set / "annotations.json").read_text())
    absent = {i for i, t in enumerate(t for t in doc["trials"] if t["split"] == "test")
              if not t["present"]}  # fmt: skip
    assert samples.x.shape == (len(samples.y), len(FEATURES))  # template matching on
    assert samples.features == FEATURES
    assert not samples.y[np.isin(samples.trial, list(absent))].any()  # absent: all wrong
    # every present trial's products were pasted unchanged: some candidate hits each one
    present = set(np.unique(samples.trial)) - absent
    assert {int(t) for t in samples.trial[samples.y == 1]} == present
    cal = fit_split(samples, meta={"split": "test"})
    prob = cal.probability(samples.x)
    assert prob[samples.y == 1].mean() > prob[samples.y == 0].mean() + 0.3
    assert cal.meta["samples"] == len(samples.y) and cal.meta["positives"] == samples.y.sum()


def test_cli_writes_a_loadable_calibration_and_refuses_the_test_split(tiny_set, tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--data", str(tiny_set), "--split", "test", "--out", str(out)]) == 2
    assert "test is for evaluation" in capsys.readouterr().err
    assert not out.exists()
    # the tiny set's validation split has a single trial: too few to fit, a clear error
    code = main(["calibrate", "--data", str(tiny_set), "--split", "val", "--out", str(out)])
    assert code == 2 and "cannot fit" in capsys.readouterr().err and not out.exists()
    missing = tmp_path / "nowhere"
    assert main(["calibrate", "--data", str(missing), "--out", str(out)]) == 2
    assert "no annotations.json" in capsys.readouterr().err


def test_a_fitted_calibration_drives_the_match_score(tiny_set, geometric_default, tmp_path):
    samples = collect_samples(geometric_default, tiny_set, split="test")
    path = tmp_path / "cal.json"
    fit_split(samples, meta={}).save(path)
    calibrated = matcher.load(
        "siammask_small",
        overrides=["inference.match.geometric=true", f"inference.match.calibration={path}"],
    )
    cal = Calibration.load(path)
    doc = json.loads((tiny_set / "annotations.json").read_text())
    ref = doc["references"][0]
    reference = matcher.Reference.from_image(tiny_set / ref["file_name"], ref["box"])
    scene = tiny_set / doc["images"][0]["file_name"]
    result = calibrated.match(reference, scene, score_threshold=0.0)
    cands = calibrated.scored_candidates(reference, scene)
    expected = cal.probability(np.array([[cands[0].evidence[f] for f in FEATURES]]))[0]
    assert result.best.score == pytest.approx(expected)


def test_without_template_matching_the_samples_and_fit_leave_its_feature_out(tiny_set):
    plain = matcher.load(
        "siammask_small",
        overrides=[
            "inference.match.geometric=true",
            "inference.match.calibration=",
            "inference.match.template=false",
        ],
    )
    samples = collect_samples(plain, tiny_set, split="test")
    assert samples.features == tuple(f for f in FEATURES if f != "template")
    assert samples.x.shape == (len(samples.y), len(FEATURES) - 1)
    assert fit_split(samples, meta={}).features == samples.features
