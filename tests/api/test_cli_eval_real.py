"""``siammatch eval pairs --set real``: end to end on a tiny hand-built real-format set, the
build-or-reuse of the default set, and one-line refusals with exit code 2."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from PIL import Image

import api.cli
import api.cli_eval_real
from tests.trainers.real_set_helpers import write_tiny_real_set


@pytest.fixture(autouse=True)
def _eval_command(monkeypatch):
    """Register ``siammatch eval`` whether or not api/cli.py lists it yet."""
    if "api.cli_eval" not in api.cli.COMMAND_MODULES:
        monkeypatch.setattr(api.cli, "COMMAND_MODULES", (*api.cli.COMMAND_MODULES, "api.cli_eval"))


@pytest.fixture(scope="module")
def real_set(tmp_path_factory):
    return write_tiny_real_set(tmp_path_factory.mktemp("real-cli") / "set")


def run(args, capsys):
    code = api.cli.main(["eval", "pairs", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_real_set_end_to_end(real_set, tmp_path, capsys):
    report, table, diagram = tmp_path / "r.json", tmp_path / "t.md", tmp_path / "d.png"
    args = ["--set", "real", "--data", real_set, "--matchers", "baseline_sift,baseline_template"]
    code, out, err = run(
        [*args, "--output", report, "--markdown", table, "--reliability", diagram], capsys
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["protocol"] == "siammatch eval pairs --set real"
    assert data["split"] == "test" and data["max_instances"] == 10
    assert data["set"] == {"name": "siammatch-real", "version": 1, "seed": 7}
    assert data["trials"]["present"] == 4 and data["trials"]["absent"] == 3
    assert data["trials"]["by_category"]["two_view"] == 2
    assert [m["matcher"] for m in data["matchers"]] == ["baseline_sift", "baseline_template"]
    for row in data["matchers"]:
        for key in ("threshold", "success_rate", "mean_iou", "instance_recall", "fp_rate"):
            assert row[key] is not None
        assert 0.0 <= row["auroc"] <= 1.0 and 0.0 <= row["ece"] <= 1.0
        assert set(row["success_by_category"]) == {"two_view", "jpeg", "several"}
        assert len(row["fp_rate_by_category"]) == 3
        assert len(row["reliability"]) == 10
        assert [r["trial_id"] for r in row["records"]] == [1, 2, 3, 4, 5, 6, 7]
        assert row["latency_ms"] > 0
    template = data["matchers"][1]
    assert template["threshold"] == 0.65 and template["success_rate"] == 1.0
    assert template["records"][0]["found"] and template["records"][0]["iou"] > 0.8
    assert data["matchers"][0]["mask_iou"] is not None and template["mask_iou"] is None
    assert table.read_text() in out
    assert "| baseline_template | 0.650 | 1.000 |" in out
    picture = np.asarray(Image.open(diagram))
    assert picture.ndim == 3 and picture.shape[0] > 600


def test_val_split_for_calibration(real_set, tmp_path, capsys):
    report = tmp_path / "val.json"
    code, _, err = run(
        [
            *("--set", "real", "--split", "val", "--data", real_set),
            *("--matchers", "baseline_sift", "--output", report),
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["split"] == "val"
    assert data["trials"] == {"present": 1, "absent": 0, "by_category": {"two_view": 1}}
    row = data["matchers"][0]
    assert [r["trial_id"] for r in row["records"]] == [8]
    assert row["fp_rate"] is None and row["auroc"] is None


def test_default_set_is_built_under_var_eval(real_set, tmp_path, monkeypatch, capsys):
    calls = []

    def build_real_set(root, *, seed=2026, trials_per_category=None, progress=False):
        calls.append((root, seed))
        if not (root / "annotations.json").is_file():  # the real builder keeps a same set
            write_tiny_real_set(root)
            document = json.loads((root / "annotations.json").read_text())
            document["info"]["seed"] = seed
            (root / "annotations.json").write_text(json.dumps(document))
        return root / "annotations.json"

    fake = types.ModuleType("trainers.evaluate.real_set")
    fake.build_real_set = build_real_set
    monkeypatch.setitem(sys.modules, "trainers.evaluate.real_set", fake)
    monkeypatch.setattr(api.cli_eval_real, "DEFAULT_DATA_ROOT", tmp_path / "eval")
    args = ["--set", "real", "--seed", "5", "--matchers", "baseline_sift"]
    code, _, err = run([*args, "--output", tmp_path / "r.json"], capsys)
    assert code == 0, err
    assert calls == [(tmp_path / "eval" / "real-seed5", 5)]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["dataset"] == str(tmp_path / "eval" / "real-seed5")
    assert data["set"]["seed"] == 5
    code, _, err = run(["--set", "real", "--matchers", "baseline_sift"], capsys)
    assert code == 0, err
    assert calls[-1] == (tmp_path / "eval" / "real-seed2026", 2026)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--split", "train"], "train split is not for evaluation"),
        (["--split", "dev"], "--split must be test or val"),
        (["--scenes", "5"], "--scenes applies to --set synthetic only"),
        (["--seed", "3"], "does not apply with --data"),
        (["--reliability", "diagram.jpg"], ".png"),
        (["--reliability", "/no/such/folder/d.png"], "/no/such/folder"),
        (["--output", "/no/such/folder/r.json"], "/no/such/folder"),
        (["--matchers", "no_such_recipe"], "no_such_recipe"),
    ],
)
def test_bad_input_exits_2_with_one_line(real_set, capsys, extra, message):
    code, out, err = run(["--set", "real", "--data", real_set, *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siammatch: error:")
    assert message in lines[0]
    assert out == ""


def test_missing_or_empty_data_folder_is_refused(tmp_path, capsys):
    code, _, err = run(["--set", "real", "--data", tmp_path / "none"], capsys)
    assert code == 2 and "no such folder" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["--set", "real", "--data", tmp_path], capsys)
    assert code == 2 and "annotations.json" in err
    (tmp_path / "annotations.json").write_text(json.dumps({"images": []}))
    code, _, err = run(["--set", "real", "--data", tmp_path, "--matchers", "baseline_sift"], capsys)
    assert code == 2 and "not a real-photo set" in err


def test_real_only_options_are_refused_for_the_synthetic_set(capsys):
    for extra in (["--split", "val"], ["--reliability", "d.png"]):
        code, _, err = run(extra, capsys)
        assert code == 2 and "applies to --set real only" in err
