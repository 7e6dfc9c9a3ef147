"""The real-photo one-shot set: categories, split hygiene, truth that matches the pixels,
the stereo pair's truth, determinism, atomic writes and the missing-source error."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from matcher.errors import InvalidArgumentError
from matcher.mask_codec import decode_rle
from tests.trainers.conftest import built_once
from trainers.evaluate import real_reader, real_set, real_sources, real_trials

TRIALS = 2  # per category and split: 70 trials in all


def _build(root: Path) -> None:
    real_set.build_real_set(root / "set", trials_per_category=TRIALS)


@pytest.fixture(scope="session")
def real_root(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "real_set", _build) / "set"


@pytest.fixture(scope="session")
def document(real_root) -> dict:
    return json.loads((real_root / "annotations.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def libraries() -> dict[str, real_trials.Library]:
    return {split: real_trials.load_library(split) for split in real_sources.SPLITS}


def rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def by_id(items: list[dict]) -> dict[int, dict]:
    return {item["id"]: item for item in items}


def mean_hue(image: np.ndarray) -> float:
    """Saturation-weighted circular mean hue of an RGB image, degrees."""
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    angle = np.deg2rad(hsv[:, 0].astype(np.float64) * 2.0)
    weight = hsv[:, 1].astype(np.float64) * (hsv[:, 2] > 40)
    return float(
        np.rad2deg(np.arctan2((weight * np.sin(angle)).sum(), (weight * np.cos(angle)).sum()))
    )


def hue_gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def centre(image: np.ndarray, box: list[float]) -> np.ndarray:
    """The middle half (each way) of ``box``: inside the pasted product even when tilted."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return image[round(y0 + h / 4) : round(y1 - h / 4), round(x0 + w / 4) : round(x1 - w / 4)]


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


# -- structure -------------------------------------------------------------------------


def test_every_category_in_every_split(document):
    counts: dict[tuple[str, str], int] = {}
    for trial in document["trials"]:
        key = (trial["split"], trial["category"])
        counts[key] = counts.get(key, 0) + 1
    for split in real_sources.SPLITS:
        wanted = [c for c in real_trials.CATEGORIES if c != "two_view" or split == "test"]
        assert {c: counts.get((split, c), 0) for c in wanted} == dict.fromkeys(wanted, TRIALS)
    assert ("train", "two_view") not in counts and ("val", "two_view") not in counts
    assert document["info"]["counts"]["test"]["two_view"] == TRIALS


def test_present_and_absent_trials(document):
    for trial in document["trials"]:
        if trial["category"] in real_trials.ABSENT:
            assert trial["present"] is False
            assert trial["boxes"] == [] and trial["masks"] == []
        else:
            assert trial["present"] is True
            want = (2, 4) if trial["category"] == "several" else (1, 1)
            assert want[0] <= len(trial["boxes"]) <= want[1], trial
            if trial["category"] == "two_view":
                assert trial["masks"] is None
            else:
                assert len(trial["masks"]) == len(trial["boxes"])


def test_splits_share_no_photograph(document, real_root):
    sources = document["info"]["sources"]
    assert set(sources) == {s.name for s in real_sources.SOURCES}
    # one photograph, one file, one split: no two table entries are the same picture
    assert len({s["sha256"] for s in sources.values()}) == len(sources)
    assert len({s["path"] for s in sources.values()}) == len(sources)
    assert {s["split"] for s in sources.values()} == set(real_sources.SPLITS)
    images = by_id(document["images"])
    references = by_id(document["references"])
    used: dict[str, set[str]] = {split: set() for split in real_sources.SPLITS}
    for trial in document["trials"]:
        split = trial["split"]
        image, reference = images[trial["image_id"]], references[trial["reference_id"]]
        assert image["split"] == reference["split"] == split
        names = {image["source"], reference["source"]}
        names |= {d["source"] for d in trial["distractors"]}
        used[split] |= names
        assert all(sources[name]["split"] == split for name in names), (trial, names)
        if trial["category"] != "two_view":  # the reference's photograph is not the background
            assert image["source"] != reference["source"]
    for a in real_sources.SPLITS:
        for b in real_sources.SPLITS:
            if a != b:
                assert not used[a] & used[b]
    # the products themselves: no reference image of one split appears in another
    digests = {}
    for ref in document["references"]:
        digest = hashlib.sha256(rgb(real_root / ref["file_name"]).tobytes())
        assert digests.setdefault(digest.hexdigest(), ref["split"]) == ref["split"]


# -- truth against pixels ------------------------------------------------------------------


def test_truth_matches_the_pixels(document, real_root, libraries):
    """Every trial is remade from its seed: the saved scene is exactly the remade one, the
    product really changes the pixels inside its mask, the mask's box is the truth box,
    and far from anything pasted the scene is the bare background."""
    images = by_id(document["images"])
    seed = document["info"]["seed"]
    position: dict[tuple[str, str], int] = {}
    for trial in document["trials"]:
        key = (trial["split"], trial["category"])
        index = position[key] = position.get(key, -1) + 1
        made = real_trials.render_trial(
            libraries[trial["split"]], trial["category"], index, seed=seed
        )
        image = images[trial["image_id"]]
        scene = rgb(real_root / image["file_name"])
        assert scene.shape == (image["height"], image["width"], 3)
        np.testing.assert_array_equal(scene, made.scene)
        for box in trial["boxes"]:
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= image["width"] and 0 <= y0 < y1 <= image["height"]
        if trial["category"] == "two_view":
            continue
        diff = np.abs(scene.astype(np.float32) - made.plate.astype(np.float32)).mean(axis=2)
        for box, rle in zip(trial["boxes"], trial["masks"], strict=True):
            mask = decode_rle(rle)
            assert mask.shape == (image["height"], image["width"])
            ys, xs = np.nonzero(mask)
            np.testing.assert_allclose(
                [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box, atol=1.0
            )
            assert mask.sum() >= 0.4 * (box[2] - box[0]) * (box[3] - box[1])
            assert diff[mask].mean() > 8.0, (trial["id"], trial["category"], diff[mask].mean())
        if trial["category"] in ("blur", "jpeg"):  # these spread every change a little
            continue
        far = np.ones(diff.shape, bool)
        for box in trial["boxes"] + [d["box"] for d in trial["distractors"]]:
            x0, y0, x1, y1 = (round(v) for v in box)
            far[max(0, y0 - 32) : y1 + 32, max(0, x0 - 32) : x1 + 32] = False
        assert far.any() and diff[far].max() == 0.0


def test_colour_lookalikes_differ_in_hue(document, real_root):
    images = by_id(document["images"])
    references = by_id(document["references"])
    checked = 0
    for trial in document["trials"]:
        if trial["category"] not in ("colour_lookalike", "absent_colour_lookalike"):
            continue
        scene = rgb(real_root / images[trial["image_id"]]["file_name"])
        reference_hue = mean_hue(rgb(real_root / references[trial["reference_id"]]["file_name"]))
        kind = "hue_rotated" if trial["category"] == "colour_lookalike" else "colour_original"
        (twin,) = [d for d in trial["distractors"] if d["kind"] == kind]
        assert hue_gap(mean_hue(centre(scene, twin["box"])), reference_hue) > 40.0
        for box in trial["boxes"]:  # the true instance keeps the reference's hue
            assert hue_gap(mean_hue(centre(scene, box)), reference_hue) < 30.0
        checked += 1
    assert checked == 2 * len(real_sources.SPLITS) * TRIALS


def test_shape_lookalike_has_the_reference_aspect(document, libraries):
    seed = document["info"]["seed"]
    for library in libraries.values():
        for index in range(TRIALS):
            made = real_trials.render_trial(library, "absent_shape_lookalike", index, seed=seed)
            (twin,) = [d for d in made.distractors if d["kind"] == "shape_lookalike"]
            assert twin["source"] != made.reference_source
            h, w = made.reference.shape[:2]
            assert any(
                p.source == twin["source"]
                and abs(p.image.shape[1] / p.image.shape[0] - w / h) < 0.05
                for p in library.products
            )


# -- the stereo pair --------------------------------------------------------------------------


def _stereo_scores(reference: np.ndarray, scene: np.ndarray, box: list[float]) -> tuple:
    def patch(x0: float, x1: float) -> np.ndarray:
        crop = scene[round(box[1]) : round(box[3]), round(x0) : round(x1)]
        return cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA).astype(np.float32)

    grey_ref = cv2.cvtColor(reference, cv2.COLOR_RGB2GRAY)
    ref = cv2.resize(grey_ref, (48, 48), interpolation=cv2.INTER_AREA).astype(np.float32)
    width = box[2] - box[0]
    shift = width if box[2] + width <= scene.shape[1] else -width
    return ncc(ref, patch(box[0], box[2])), ncc(ref, patch(box[0] + shift, box[2] + shift))


def test_two_view_truth_finds_the_same_surface(document, real_root, libraries):
    images = by_id(document["images"])
    references = by_id(document["references"])
    trials = [t for t in document["trials"] if t["category"] == "two_view"]
    assert len({t["image_id"] for t in trials}) == 1  # one right view, shared
    for trial in trials:
        image = images[trial["image_id"]]
        assert (image["height"], image["width"]) == (500, 741)
        scene = cv2.cvtColor(rgb(real_root / image["file_name"]), cv2.COLOR_RGB2GRAY)
        reference = rgb(real_root / references[trial["reference_id"]]["file_name"])
        right, wrong = _stereo_scores(reference, scene, trial["boxes"][0])
        assert right > 0.6 and right > wrong + 0.15, (right, wrong)
    # every region the split can draw, not only the two built
    library = libraries["test"]
    grey_right = cv2.cvtColor(library.stereo[1], cv2.COLOR_RGB2GRAY)
    seed = document["info"]["seed"]
    assert len(library.regions) >= 16
    for index in range(len(library.regions)):
        made = real_trials.render_trial(library, "two_view", index, seed=seed)
        right, wrong = _stereo_scores(made.reference, grey_right, list(made.boxes[0]))
        assert right > 0.6 and right > wrong + 0.15, (index, right, wrong)


# -- building ----------------------------------------------------------------------------------


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_building_twice_gives_identical_files(real_root, tmp_path):
    again = tmp_path / "again"
    real_set.build_real_set(again, trials_per_category=TRIALS)
    assert (again / "annotations.json").read_bytes() == (
        real_root / "annotations.json"
    ).read_bytes()
    assert _digests(again) == _digests(real_root)


def test_an_up_to_date_set_is_not_rebuilt_and_another_replaces_it(tmp_path):
    root = tmp_path / "one"
    path = real_set.build_real_set(root, splits=("val",), trials_per_category=1)
    stamp = path.stat().st_mtime_ns
    assert real_set.build_real_set(root, splits=("val",), trials_per_category=1) == path
    assert path.stat().st_mtime_ns == stamp
    real_set.build_real_set(root, seed=7, splits=("val",), trials_per_category=1)
    assert json.loads(path.read_text())["info"]["seed"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one"]  # no partial or old folder


def test_a_foreign_folder_is_not_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InvalidArgumentError, match="refusing"):
        real_set.build_real_set(tmp_path / "mine", splits=("val",), trials_per_category=1)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(
    ("package", "file"),
    [(real_sources.MATE, "nature/Garden.jpg"), (real_sources.SKIMAGE, "rocket.jpg")],
)
def test_a_missing_source_fails_before_any_work(monkeypatch, tmp_path, package, file):
    monkeypatch.setitem(real_sources.SOURCE_ROOTS, package, tmp_path / "not-installed")
    root = tmp_path / "set"
    with pytest.raises(InvalidArgumentError) as info:
        real_set.build_real_set(root, trials_per_category=1)
    assert package in str(info.value) and file in str(info.value)
    assert list(tmp_path.iterdir()) == []  # neither the set nor a partial folder


def test_a_package_that_is_not_installed_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(real_sources.SOURCE_ROOTS, real_sources.SKIMAGE, None)
    with pytest.raises(InvalidArgumentError, match="scikit-image"):
        real_set.build_real_set(tmp_path / "set", splits=("test",), trials_per_category=1)
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"splits": ("test", "nope")},
        {"splits": ()},
        {"trials_per_category": 0},
        {"trials_per_category": {"val": 3}},
        {"seed": -1},
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(InvalidArgumentError):
        real_set.build_real_set(tmp_path / "set", **kwargs)
    assert not (tmp_path / "set").exists()


# -- reading ---------------------------------------------------------------------------------


def test_load_real_trials(real_root, document):
    trials = real_reader.load_real_trials(real_root, "test")
    assert len(trials) == len(real_trials.CATEGORIES) * TRIALS
    assert {t["split"] for t in trials} == {"test"}
    for trial in trials:
        assert Path(trial["image_path"]).is_file() and Path(trial["reference_path"]).is_file()
    with pytest.raises(InvalidArgumentError, match="no split"):
        real_reader.load_real_trials(real_root, "holdout")


def test_load_real_trials_names_a_bad_file(tmp_path):
    with pytest.raises(InvalidArgumentError, match=re.escape(str(tmp_path))):
        real_reader.load_real_trials(tmp_path, "test")
    (tmp_path / "annotations.json").write_text("{not json")
    with pytest.raises(InvalidArgumentError, match=re.escape("annotations.json: not a valid")):
        real_reader.load_real_trials(tmp_path, "test")
    (tmp_path / "annotations.json").write_text(json.dumps({"info": {"name": "other"}}))
    with pytest.raises(InvalidArgumentError, match=re.escape("annotations.json: not a valid")):
        real_reader.load_real_trials(tmp_path, "test")
