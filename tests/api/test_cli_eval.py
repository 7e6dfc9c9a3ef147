"""``siammatch eval coco-oneshot``: end to end on a synthetic set with a tracker recipe and
from detections files, and a one-line error with exit code 2 on bad input."""

from __future__ import annotations

import json

import pytest

import api.cli
from tests.trainers.oneshot.helpers import make_dataset, perfect_records

SYNTH_SPLIT = {"unseen": [1, 3, 5], "seen": [2, 4, 6]}
# siamfc_pixels settings that keep the pyramid short so a scene takes a fraction of a second
FAST = [
    "--set",
    "inference.match.scale_step=1.6",
    "--set",
    "inference.match.pre_nms_top_k=20",
    "--max-instances",
    "5",
    "--score-floor",
    "0.5",
]


@pytest.fixture(autouse=True)
def _eval_command(monkeypatch):
    """Register ``siammatch eval`` whether or not api/cli.py lists it yet."""
    if "api.cli_eval" not in api.cli.COMMAND_MODULES:
        monkeypatch.setattr(api.cli, "COMMAND_MODULES", (*api.cli.COMMAND_MODULES, "api.cli_eval"))


def run(args, capsys):
    code = api.cli.main(["eval", "coco-oneshot", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from trainers.data.synth import generate

    root = tmp_path_factory.mktemp("synth-eval")
    data = generate(
        root / "set",
        num_products=6,
        num_scenes=12,
        seed=5,
        image_size=(160, 208),
        workers=1,
        progress=False,
    )
    split = root / "split.json"
    split.write_text(json.dumps(SYNTH_SPLIT))
    return {"ann": data / "annotations.json", "images": data / "images", "split": split}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("small-eval"))


def test_tracker_recipe_end_to_end_and_rescored_from_its_detections(synth, tmp_path, capsys):
    report_path, dets, refs = tmp_path / "r.json", tmp_path / "d.json", tmp_path / "q.json"
    args = ["--ann", synth["ann"], "--split-file", synth["split"], "--runs", 2, "--seed", 3]
    args += ["--min-ref-size", 8, "--recipe", "siamfc_pixels", *FAST, "--no-progress"]
    code, out, err = run(
        [*args, "-o", report_path, "--export-detections", dets, "--export-references", refs],
        capsys,
    )
    assert code == 0, err
    assert "| unseen | 3 |" in out and "| seen | 3 |" in out and "Per-category AP" in out
    report = json.loads(report_path.read_text())
    assert report["source"]["recipe"] == "siamfc_pixels"
    assert report["settings"]["runs"] == 2 and report["settings"]["threshold"] == 0.83
    assert report["protocol"]["deviations"] and not report["segm_evaluated"]
    queries = json.loads(refs.read_text())["queries"]
    records = json.loads(dets.read_text())
    assert records and {r["run"] for r in records} == {0, 1}
    assert all(r["score"] >= 0.5 and "segmentation" not in r for r in records)
    for group in ("unseen", "seen"):
        g = report["groups"][group]
        assert g["categories"] == SYNTH_SPLIT[group]
        assert g["num_queries"] == sum(
            1 for q in queries if q["group"] == group and q["run"] == 0 and not q["absent"]
        )
        assert g["num_queries"] > 0 and g["absent"]["num_references"] > 0
        for metric in ("AP50", "AP"):
            runs = g["bbox"][metric]["runs"]
            assert len(runs) == 2 and all(0.0 <= v <= 1.0 for v in runs)
        assert len(g["per_category"]) == 3
    assert any(q["reference"]["image_id"] != q["image_id"] for q in queries)
    assert all(q["reference"]["image_id"] != q["image_id"] for q in queries if not q["absent"])
    # the exported detections score the same through --detections
    code, out, err = run(
        [
            "--ann",
            synth["ann"],
            "--split-file",
            synth["split"],
            "--seed",
            3,
            "--min-ref-size",
            8,
            "--threshold",
            0.83,
            "--detections",
            dets,
            "-o",
            tmp_path / "again.json",
        ],
        capsys,
    )
    assert code == 0, err
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["settings"]["runs"] == 2  # taken from the file
    assert again["groups"] == report["groups"]


def test_detections_file_end_to_end(small, tmp_path, capsys):
    base = ["--ann", small["ann"], "--split-file", small["split"], "--runs", 3, "--seed", 1]
    refs = tmp_path / "refs.json"
    code, out, err = run([*base, "--export-references", refs], capsys)
    assert code == 0, err
    queries = json.loads(refs.read_text())["queries"]
    assert {q["run"] for q in queries} == {0, 1, 2}
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(perfect_records(queries)))
    md = tmp_path / "table.md"
    code, out, err = run(
        [*base, "--detections", dets, "-o", tmp_path / "r.json", "--markdown", md], capsys
    )
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    for group in ("unseen", "seen"):
        for iou_type in ("bbox", "segm"):
            assert report["groups"][group][iou_type]["AP50"]["mean"] == pytest.approx(1.0)
    assert md.read_text() in out
    assert "| unseen | 3 | 6 | 100.0 ± 0.0 |" in md.read_text()
    # another seed draws other absent references, but AP50 of the present pairs stays 1
    code, out, err = run(
        [*base[:-1], "2", "--detections", dets, "--classes", "unseen", "-o", tmp_path / "s.json"],
        capsys,
    )
    assert code == 0, err
    other = json.loads((tmp_path / "s.json").read_text())
    assert list(other["groups"]) == ["unseen"]
    assert other["groups"]["unseen"]["bbox"]["AP50"]["mean"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_ann", "annotation file"),
        ("missing_split_file", "split file"),
        ("unknown_category", "category 42 is not in the annotations"),
        ("malformed_detections", "bbox must be"),
        ("detections_not_json", "not readable JSON"),
        ("missing_detections", "detections file"),
        ("recipe_and_detections", "not both"),
        ("no_source", "give a matcher"),
        ("missing_images", "images folder"),
        ("coco_split_on_other_data", "--split-file"),
        ("bad_threshold", "--threshold"),
        ("missing_weights", "weights file"),
        ("output_folder_missing", "does not exist"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(small, tmp_path, capsys, case, message):
    base = ["--ann", small["ann"], "--split-file", small["split"]]
    good = tmp_path / "good.json"
    good.write_text("[]")
    args = {
        "missing_ann": ["--ann", tmp_path / "no.json", "--split", 1, "--detections", good],
        "missing_split_file": [
            "--ann",
            small["ann"],
            "--split-file",
            tmp_path / "no.json",
            "--detections",
            good,
        ],
        "unknown_category": ["--ann", small["ann"], "--split-file", tmp_path / "split.json"],
        "malformed_detections": [*base, "--detections", tmp_path / "bad.json"],
        "detections_not_json": [*base, "--detections", tmp_path / "text.json"],
        "missing_detections": [*base, "--detections", tmp_path / "none.json"],
        "recipe_and_detections": [*base, "--recipe", "siamfc_pixels", "--detections", good],
        "no_source": base,
        "missing_images": [*base, "--recipe", "siamfc_pixels", "--images", tmp_path / "nope"],
        "coco_split_on_other_data": ["--ann", small["ann"], "--split", 2, "--detections", good],
        "bad_threshold": [*base, "--detections", good, "--threshold", 1.5],
        "missing_weights": [*base, "--recipe", "siamfc_alexnet", "--weights", tmp_path / "w.pth"],
        "output_folder_missing": [*base, "--detections", good, "-o", tmp_path / "x" / "r.json"],
    }[case]
    (tmp_path / "split.json").write_text(json.dumps({"unseen": [1, 42]}))
    if case == "unknown_category":
        args += ["--detections", good]
    (tmp_path / "bad.json").write_text(
        json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2], "score": 0.5}])
    )
    (tmp_path / "text.json").write_text("image_id,category_id\n1,1\n")
    code, _, err = run(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siammatch: error: "), err
    assert message in lines[0]


def test_siam_mask_rcnn_r50_end_to_end_with_masks(synth, tmp_path, capsys):
    import torch

    import matcher
    from matcher.checkpoints.io import save_checkpoint

    torch.manual_seed(0)
    untrained = matcher.build(matcher.load_recipe("siam_mask_rcnn_r50"))
    weights = tmp_path / "smrcnn.pth"
    save_checkpoint(weights, untrained.net, untrained.recipe.to_dict())
    report_path = tmp_path / "r.json"
    args = ["--ann", synth["ann"], "--split-file", synth["split"], "--runs", 1, "--seed", 0]
    args += ["--min-ref-size", 8, "--recipe", "siam_mask_rcnn_r50", "--weights", weights]
    args += ["--set", "model.detection.min_size=160", "--set", "model.detection.max_size=208"]
    # an untrained detector keeps every proposal: cap them so the RoI heads stay cheap
    args += ["--set", "model.detection.rpn.pre_nms_top_n_test=100"]
    args += ["--set", "model.detection.rpn.post_nms_top_n_test=50"]
    args += ["--set", "inference.detect.detections_per_image=10"]
    args += ["--score-floor", "0.0", "--no-progress", "-o", report_path, "--max-images", 4]
    code, _, err = run(args, capsys)
    assert code == 0, err
    report = json.loads(report_path.read_text())
    assert report["source"]["recipe"] == "siam_mask_rcnn_r50"
    assert report["segm_evaluated"]  # the detector's masks were scored
    for group in ("unseen", "seen"):
        for metric in ("AP50", "AP"):
            value = report["groups"][group]["segm"][metric]["runs"][0]
            assert 0.0 <= value <= 1.0
