"""The synthetic e-commerce generator: determinism, COCO validity, lookalikes, occlusion,
safe output handling and the ``siammatch synth`` command."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from api.cli import main
from matcher.errors import InvalidArgumentError
from trainers.data.synth import (
    ProductBank,
    SceneSettings,
    catalog_photo,
    compose_scene,
    design_catalog,
    design_foreign,
    generate,
    render_product,
    scene_rng,
)
from trainers.data.synth.bank import prepare
from trainers.data.synth.compositing import Canvas
from trainers.data.synth.designs import SHAPES, ProductSpec

SIZE = (240, 320)
SMALL = {"num_products": 10, "num_scenes": 24, "seed": 3, "image_size": SIZE, "progress": False}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _decode(ann: dict) -> np.ndarray:
    rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
    return coco_mask.decode(rle).astype(bool)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "a", workers=1, **SMALL)


@pytest.fixture(scope="module")
def data(dataset) -> dict:
    return json.loads((dataset / "annotations.json").read_text())


# -- determinism ----------------------------------------------------------------------


def test_same_seed_gives_identical_files_whatever_the_worker_count(dataset, tmp_path):
    again = generate(tmp_path / "b", workers=2, **SMALL)
    first, second = _files(dataset), _files(again)
    assert first.keys() == second.keys()
    assert len(first) == 1 + SMALL["num_products"] + SMALL["num_scenes"]
    assert all(first[k] == second[k] for k in first), "a file differs between runs"


def test_different_seeds_differ(tmp_path):
    small = {
        "num_products": 4,
        "num_scenes": 3,
        "image_size": SIZE,
        "workers": 1,
        "progress": False,
    }
    a = _files(generate(tmp_path / "s0", seed=0, **small))
    b = _files(generate(tmp_path / "s1", seed=1, **small))
    assert a["annotations.json"] != b["annotations.json"]
    assert a["images/000001.jpg"] != b["images/000001.jpg"]
    assert a["catalog/00001.png"] != b["catalog/00001.png"]


def test_scene_does_not_depend_on_the_render_cache():
    catalog, foreign = design_catalog(6, seed=1), design_foreign(12, seed=1)
    warm = ProductBank(catalog, foreign)
    for i in range(3):
        compose_scene(scene_rng(1, i), warm, image_size=SIZE)
    cold = ProductBank(catalog, foreign, capacity=1)
    a = compose_scene(scene_rng(1, 5), warm, image_size=SIZE)
    b = compose_scene(scene_rng(1, 5), cold, image_size=SIZE)
    assert np.array_equal(a.image, b.image)
    assert [i.product_id for i in a.instances] == [i.product_id for i in b.instances]


# -- COCO validity --------------------------------------------------------------------


def test_pycocotools_loads_it_and_boxes_areas_match_the_masks(dataset, data):
    coco = COCO(str(dataset / "annotations.json"))
    assert len(coco.getImgIds()) == SMALL["num_scenes"]
    assert sorted(coco.getCatIds()) == list(range(1, SMALL["num_products"] + 1))
    assert data["annotations"], "no instance at all"
    assert [a["id"] for a in data["annotations"]] == list(range(1, len(data["annotations"]) + 1))
    for ann in data["annotations"]:
        assert isinstance(ann["segmentation"]["counts"], str)
        mask = _decode(ann)
        img = coco.imgs[ann["image_id"]]
        assert mask.shape == (img["height"], img["width"])
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann["bbox"]
        expected = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert np.abs(np.array([x, y, w, h]) - np.array(expected)).max() <= 1
        assert ann["area"] == int(mask.sum()) > 0
        assert np.array_equal(coco.annToMask(ann).astype(bool), mask)


def test_low_visibility_instances_are_crowd(data):
    min_visible = data["info"]["settings"]["min_visible"]
    for ann in data["annotations"]:
        assert 0 < ann["visible_fraction"] <= 1
        assert ann["iscrowd"] == int(ann["visible_fraction"] < min_visible)


def test_images_and_catalog_photos_exist_with_their_sizes(dataset, data):
    for img in data["images"]:
        with Image.open(dataset / data["info"]["images_dir"] / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"]) == (SIZE[1], SIZE[0])
            assert im.format == "JPEG"
    category_ids = {c["id"] for c in data["categories"]}
    assert {p["id"] for p in data["products"]} == category_ids
    for product in data["products"]:
        with Image.open(dataset / product["catalog"]) as im:
            assert im.mode == "RGB" and im.format == "PNG"
    assert data["info"]["seed"] == SMALL["seed"]
    assert data["info"]["generator"] == "siammatch.synth"


# -- content --------------------------------------------------------------------------


def test_lookalikes_are_linked_and_appear_together(data):
    products = {p["id"]: p for p in data["products"]}
    families: dict[str, set[int]] = {}
    for p in products.values():
        families.setdefault(p["family"], set()).add(p["id"])
    for p in products.values():
        assert set(p["lookalikes"]) == families[p["family"]] - {p["id"]}
        assert 1 <= len(p["lookalikes"]) <= 3
    categories = {c["id"]: c for c in data["categories"]}
    assert all(categories[i]["supercategory"] == p["family"] for i, p in products.items())
    together = 0
    per_image: dict[int, set[int]] = {}
    for ann in data["annotations"]:
        per_image.setdefault(ann["image_id"], set()).add(ann["category_id"])
    for ids in per_image.values():
        if any(set(products[i]["lookalikes"]) & ids for i in ids):
            together += 1
    assert together >= 2, "lookalikes should share scenes"


def test_every_product_is_absent_from_some_scenes(data):
    present: dict[int, set[int]] = {}
    for ann in data["annotations"]:
        present.setdefault(ann["category_id"], set()).add(ann["image_id"])
    for product in data["products"]:
        assert len(present.get(product["id"], set())) < len(data["images"])
    negative = ProductBank(design_catalog(4, seed=0), design_foreign(12, seed=0))
    scene = compose_scene(
        scene_rng(0, 0), negative, image_size=SIZE, settings=SceneSettings(p_negative=1.0)
    )
    assert scene.instances == ()


def test_visible_masks_never_overlap_and_occlusion_happens(dataset, data):
    by_image: dict[int, list] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for anns in by_image.values():
        coverage = sum(_decode(a).astype(np.uint8) for a in anns)
        assert coverage.max() <= 1
    assert any(a["visible_fraction"] < 0.95 for a in data["annotations"])


def _spec(product_id: int) -> ProductSpec:
    return dataclasses.replace(design_catalog(2, seed=0)[0], product_id=product_id)


def test_canvas_occlusion_against_an_analytic_reference():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[...] = (200, 50, 50, 255)
    a = prepare(_spec(1), rgba)
    b = prepare(_spec(2), rgba)
    canvas = Canvas(np.zeros((200, 300, 3), np.float32))
    quad_a = np.float32([[50, 50], [150, 50], [150, 150], [50, 150]])
    quad_b = np.float32([[100, 100], [200, 100], [200, 200], [100, 200]])  # covers A's corner
    no_light = np.ones(3, np.float32)
    canvas.place_product(a, quad_a, annotate=True, gain=no_light, shadow=0.0)
    canvas.place_product(b, quad_b, annotate=True, gain=no_light, shadow=0.0)
    (pa, ma, area_a, full_a), (pb, mb, area_b, full_b) = canvas.visible_masks()
    assert (pa, pb) == (1, 2)
    expected_a = np.zeros((200, 300), bool)
    expected_a[50:150, 50:150] = True
    expected_a[100:, 100:] = False
    assert np.abs(ma.astype(int) - expected_a).sum() <= 2 * 100  # one-pixel borders at most
    assert not (ma & mb).any()
    assert abs(full_a - 100 * 100) <= 2 * 100 and abs(area_a - 7500) <= 2 * 100
    assert abs(area_b - 100 * 100) <= 2 * 100 and abs(full_b - 100 * 100) <= 2 * 100


# -- products -------------------------------------------------------------------------


def test_every_shape_renders_and_lookalikes_are_close_but_different():
    specs = design_catalog(40, seed=5)
    by_family: dict[int, list] = {}
    for spec in specs:
        by_family.setdefault(spec.family_id, []).append(spec)
    base, look = next(f for f in by_family.values() if f[0].shape == "box")[:2]
    a, b = render_product(base), render_product(look)
    assert a.shape == b.shape and a.dtype == np.uint8 and a.shape[2] == 4
    assert np.array_equal(a, render_product(base))
    assert np.array_equal(a[..., 3], b[..., 3])  # same packaging
    diff = np.abs(a[..., :3].astype(int) - b[..., :3].astype(int)).max(axis=2)
    assert 0 < (diff > 40).mean() < 0.35  # a small part of the face changes
    assert base.name != look.name and base.family_name == look.family_name
    for shape in SHAPES:
        spec = next((s for s in specs if s.shape == shape), None)
        rgba = render_product(spec or dataclasses.replace(specs[0], shape=shape, depth=0))
        assert max(rgba.shape[:2]) <= 300
        opaque = (rgba[..., 3] > 128).mean()
        assert 0.3 < opaque <= 1.0, shape
        photo = catalog_photo(rgba, rng=np.random.default_rng(0))
        assert photo.shape == (400, 400, 3)
        corners = photo[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert corners.min() >= 220  # plain light background


def test_worker_module_does_not_import_matcher_or_torch():
    code = (
        "import sys, trainers.data.synth.worker\n"
        "print(','.join(m for m in ('matcher', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- output folder and arguments ------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"num_products": 0},
        {"num_products": -3},
        {"num_products": 10**6},
        {"num_products": 2.5},
        {"num_products": True},
        {"num_scenes": 0},
        {"num_scenes": 10**9},
        {"seed": -1},
        {"workers": 0},
        {"image_size": (32, 320)},
        {"image_size": (240,)},
        {"settings": SceneSettings(p_lookalike=1.5)},
        {"settings": SceneSettings(jpeg_quality=(90, 60))},
    ],
)
def test_bad_arguments_are_refused_before_any_work(tmp_path, changes):
    args = {**SMALL, "workers": 1, **changes}
    with pytest.raises(InvalidArgumentError):
        generate(tmp_path / "out", **args)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_rules(dataset, tmp_path):
    tiny = {"num_products": 2, "num_scenes": 2, "image_size": SIZE, "workers": 1, "progress": False}
    with pytest.raises(InvalidArgumentError, match="not empty"):
        generate(dataset, **tiny)
    (tmp_path / "empty").mkdir()
    assert generate(tmp_path / "empty", **tiny).is_dir()  # an empty folder is fine
    replaced = generate(tmp_path / "empty", overwrite=True, seed=9, **tiny)
    assert json.loads((replaced / "annotations.json").read_text())["info"]["seed"] == 9
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidArgumentError, match="not a dataset written by this generator"):
        generate(other, overwrite=True, **tiny)
    assert (other / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        generate(tmp_path / "file", **tiny)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    from trainers.data.synth import worker

    calls = []

    def failing(index):
        calls.append(index)
        if index == 2:
            raise RuntimeError("disk on fire")
        return real(index)

    real = worker.scene_task
    monkeypatch.setattr(worker, "scene_task", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(
            tmp_path / "out",
            num_products=2,
            num_scenes=5,
            image_size=SIZE,
            workers=1,
            progress=False,
        )
    assert calls == [0, 1, 2]
    assert list(tmp_path.iterdir()) == []


# -- command line ---------------------------------------------------------------------


def test_cli_synth_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = [
        "synth",
        "--out",
        str(out),
        "--products",
        "3",
        "--scenes",
        "4",
        "--size",
        "240x320",
        "--workers",
        "1",
        "--seed",
        "2",
    ]
    assert main(argv) == 0
    assert "4 scenes" in capsys.readouterr().out
    data = json.loads((out / "annotations.json").read_text())
    assert len(data["images"]) == 4 and len(data["products"]) == 3
    assert data["info"]["image_size"] == [240, 320] and data["info"]["seed"] == 2
    assert main(argv) == 2  # refuses to overwrite
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and err[0].startswith("siammatch: error:")
    assert main([*argv, "--overwrite"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--products", "0"], "num_products"),
        (["--scenes", "-5"], "num_scenes"),
        (["--size", "big"], "expected HxW"),
        (["--size", "20x20"], "image_size"),
        (["--workers", "0"], "workers"),
    ],
)
def test_cli_synth_mistakes_exit_2_with_one_line(tmp_path, capsys, extra, message):
    argv = ["synth", "--out", str(tmp_path / "x"), "--products", "3", "--scenes", "4", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x").exists()
