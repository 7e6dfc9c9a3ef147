"""The ``siammatch`` command line: results, drawings, and exit code 2 on user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from api.cli import main
from api.defaults import DEFAULT_RECIPE
from tests.helpers import clutter_scene, iou, paste, product_image, synthetic_shelf


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    product = product_image("coffee")
    box = (300, 150, 420, 270)
    scene = paste(clutter_scene(360, 520, seed=2), product, box)
    Image.fromarray(product).save(root / "ref.png")
    Image.fromarray(scene).save(root / "scene.jpg", quality=95)
    (root / "notes.txt").write_text("not an image")
    Image.fromarray(np.full((1, 5000, 3), 128, np.uint8)).save(root / "thin.png")
    Image.fromarray(np.full((25_000, 2, 3), 128, np.uint8)).save(root / "tall.png")
    return root, box


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_match_prints_json_and_draws(files, capsys, tmp_path):
    root, box = files
    out_png = tmp_path / "annotated.png"
    code, out, err = run(
        [
            "match",
            str(root / "ref.png"),
            str(root / "scene.jpg"),
            "--json",
            "-o",
            str(out_png),
            "--max-instances",
            "3",
            "--recipe",
            "siamfc_pixels",  # template matching: exact on a pasted photo
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["recipe"] == "siamfc_pixels"
    assert data["scene_size"] == {"height": 360, "width": 520}
    assert iou(data["instances"][0]["box"], box) >= 0.8
    drawn = np.asarray(Image.open(out_png))
    assert drawn.shape == (360, 520, 3)
    original = np.asarray(Image.open(root / "scene.jpg"))
    assert (np.abs(drawn.astype(int) - original.astype(int)).sum(axis=2) > 60).sum() > 200


def test_match_with_ref_box_and_text_output(files, capsys):
    root, box = files
    code, out, _ = run(
        [
            "match",
            str(root / "scene.jpg"),
            str(root / "scene.jpg"),
            "--ref-box",
            ",".join(map(str, box)),
            "--recipe",
            "siamfc_pixels",
        ],
        capsys,
    )
    assert code == 0
    assert out.startswith("1. score")


def test_match_defaults_to_the_shipped_matcher_with_masks(tmp_path, capsys):
    ref, scene, boxes = synthetic_shelf(tmp_path / "synth")
    code, out, err = run(["match", str(ref), str(scene), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["recipe"] == DEFAULT_RECIPE == "siammask_small"
    best = data["instances"][0]
    assert max(iou(best["box"], b) for b in boxes) >= 0.5
    assert best["mask"]["counts"] and best["mask"]["size"] == [
        data["scene_size"]["height"],
        data["scene_size"]["width"],
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["match", "missing.png", "{scene}"], "no such file"),
        (["match", "{notes}", "{scene}"], "not a recognised image"),
        (["match", "{thin}", "{scene}"], "aspect ratio 5000:1 is over the limit of 20:1"),
        (["match", "{ref}", "{thin}"], "aspect ratio 5000:1"),
        (["match", "{ref}", "{tall}"], "a side over the limit of 20000 pixels"),
        (["match", "{ref}", "{scene}", "--ref-box", "10,10,10,50"], "zero or negative area"),
        (["match", "{ref}", "{scene}", "--ref-box", "0,0,900,50"], "outside"),
        (["match", "{ref}", "{scene}", "--ref-box", "1,2,3"], "four numbers"),
        (["match", "{ref}", "{scene}", "--threshold", "2"], "score_threshold"),
        (["match", "{ref}", "{scene}", "--recipe", "nope"], "unknown recipe"),
        (["match", "{ref}", "{scene}", "--recipe", "siamrpnpp_r50"], "needs trained weights"),
        (
            ["match", "{ref}", "{scene}", "--recipe", "siamrpnpp_r50", "--weights", "{notes}"],
            "not a PyTorch checkpoint",
        ),
        (["match", "{ref}", "{scene}", "--weights", "nope.pth"], "does not exist"),
        (["match", "{ref}", "{scene}", "-o", "out.gif"], "expected an image file"),
        (["match", "{ref}", "{scene}", "-o", "/no/such/dir/out.png"], "does not exist"),
        (["match", "{ref}", "{scene}", "--set", "inference.match.bogus=1"], "unknown recipe key"),
        (["track", "{root}", "--box", "0,0,50,50"], "no image files"),
        (["track", "{notes}", "--box", "0,0,50,50"], "neither a folder"),
        (["track", "missing_dir", "--box", "0,0,50,50"], "no such file"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(files, capsys, args, message):
    root, _ = files
    subs = {
        "{scene}": str(root / "scene.jpg"),
        "{ref}": str(root / "ref.png"),
        "{notes}": str(root / "notes.txt"),
        "{thin}": str(root / "thin.png"),
        "{tall}": str(root / "tall.png"),
        "{root}": str(root),
    }
    argv = [subs.get(a, a) for a in args]
    if args[0] == "track" and args[1] == "{root}":
        argv[1] = str(root / "empty")
        (root / "empty").mkdir(exist_ok=True)
    code, _, err = run(argv, capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("siammatch: error:"), err
    assert message in lines[0]


def _frames(tmp_path: Path, count: int = 5) -> tuple[Path, list[tuple[int, int, int, int]]]:
    folder = tmp_path / "frames"
    folder.mkdir()
    product = product_image("astronaut")
    # A plain background: the training-free default matcher correlates context too, and a
    # static textured context would hold it in place.
    background = (
        np.random.default_rng(4).normal(128, 8, (300, 400, 3)).clip(0, 255).astype(np.uint8)
    )
    boxes = []
    for i in range(count):
        box = (100 + 8 * i, 80 + 5 * i, 180 + 8 * i, 160 + 5 * i)
        boxes.append(box)
        Image.fromarray(paste(background, product, box)).save(folder / f"frame{i + 1}.png")
    return folder, boxes


def test_track_folder_to_json_and_frames(tmp_path, capsys):
    folder, boxes = _frames(tmp_path)
    out_dir = tmp_path / "out"
    code, out, err = run(
        ["track", str(folder), "--box", ",".join(map(str, boxes[0])), "--json", "-o", str(out_dir)],
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    assert [f["frame"] for f in data["frames"]] == list(range(5))
    assert iou(data["frames"][-1]["box"], boxes[-1]) >= 0.6
    assert len(list(out_dir.glob("*.png"))) == 5


def test_track_video_in_and_out(tmp_path, capsys):
    import cv2

    folder, boxes = _frames(tmp_path, count=4)
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (400, 300))
    for path in sorted(folder.glob("*.png")):
        writer.write(np.asarray(Image.open(path))[:, :, ::-1].copy())
    writer.release()
    out_video = tmp_path / "tracked.mp4"
    code, out, err = run(
        ["track", str(video), "--box", ",".join(map(str, boxes[0])), "-o", str(out_video)], capsys
    )
    assert code == 0, err
    assert "tracked 4 frames" in out
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_console_script_is_installed_and_lists_recipes():
    exe = Path(sys.executable).parent / "siammatch"
    out = subprocess.run([str(exe), "recipes"], capture_output=True, text=True, check=True)
    assert "siamrpnpp_r50" in out.stdout and "siamfc_pixels" in out.stdout
    bad = subprocess.run([str(exe), "match"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_demo_writes_its_outputs(tmp_path, capsys):
    # Template matching finds the pasted photo crops exactly; the default (trained on the
    # synthetic generator's packs) boxes them loosely, see README "Shipped weights".
    args = ["demo", "--out", str(tmp_path / "demo"), "--recipe", "siamfc_pixels"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "demo" / "result.json").read_text())
    assert data["recipe"] == "siamfc_pixels"
    assert len(data["instances"]) >= 2
    for truth in data["truth"]:
        assert max(iou(truth, inst["box"]) for inst in data["instances"]) >= 0.8
    assert (tmp_path / "demo" / "result.png").is_file()
