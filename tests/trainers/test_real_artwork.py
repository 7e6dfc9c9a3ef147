"""The ``real`` training source (:mod:`trainers.data.real_artwork`): product artwork and
backgrounds from the real-photo set's train-split photographs only, written in the
synthetic layout and read back as catalog pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.errors import ConfigError, InvalidArgumentError
from matcher.train_config import DataSourceConfig, TrainConfig
from trainers.data import build_pair_dataset
from trainers.data.real_artwork import artwork_products, generate_real_artwork, render_scene
from trainers.evaluate import real_sources as rsrc
from trainers.evaluate import real_trials as rt

SCENES = 6


@pytest.fixture(scope="module")
def artwork(tmp_path_factory):
    root = tmp_path_factory.mktemp("real") / "artwork"
    generate_real_artwork(root, num_scenes=SCENES, seed=11)
    return root


def test_only_train_split_photographs_go_in(artwork):
    doc = json.loads((artwork / "annotations.json").read_text())
    train = {s.name for s in rsrc.sources_of(["train"])}
    held_out = {s.name for s in rsrc.sources_of(["val", "test"])}
    assert set(doc["info"]["sources"]) <= train and not set(doc["info"]["sources"]) & held_out
    families = {p["family"] for p in doc["products"]}
    assert families <= train
    # every saturated textured product has a hue-turned copy in its family
    turned = [p for p in doc["products"] if "@hue" in p["name"]]
    assert turned and all(
        p["name"].split("@")[0] in {q["name"] for q in doc["products"]} for p in turned
    )


def test_scenes_boxes_and_catalog_photos_are_consistent(artwork):
    doc = json.loads((artwork / "annotations.json").read_text())
    assert len(doc["images"]) == SCENES and sum(doc["info"]["changes"].values()) == SCENES
    products = {p["id"]: p for p in doc["products"]}
    for p in doc["products"]:
        assert (artwork / p["catalog"]).is_file()
    per_image: dict[int, list[int]] = {}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        assert w >= 4 and h >= 4 and x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
        per_image.setdefault(a["image_id"], []).append(a["category_id"])
    for cats in per_image.values():
        assert 1 <= len(cats) <= 4
        assert len({products[c]["family"] for c in cats}) == len(cats)  # one per photograph
    assert not list(artwork.parent.glob(".*tmp"))


def test_a_scene_depends_only_on_seed_and_index():
    library = rt.load_library("train")
    products = artwork_products(library, 3)
    a, pasted_a, change_a = render_scene(library, products, 5, seed=3)
    b, pasted_b, change_b = render_scene(library, products, 5, seed=3)
    c, _, _ = render_scene(library, products, 6, seed=3)
    assert np.array_equal(a, b) and change_a == change_b
    assert [k for k, _ in pasted_a] == [k for k, _ in pasted_b]
    assert not np.array_equal(a, c)


def test_catalog_pairs_use_the_whole_artwork_as_reference(artwork):
    train = TrainConfig(
        data=(DataSourceConfig(kind="real", root=str(artwork), pair_mode="catalog"),),
        steps_per_epoch=4,
        batch_size=4,
        negative_ratio=0.0,
    )
    ds = build_pair_dataset(
        train, split="train", exemplar_size=63, search_size=127, context_amount=0.5
    )
    doc = json.loads((artwork / "annotations.json").read_text())
    boxes = {str(artwork / p["catalog"]): p["catalog_box"] for p in doc["products"]}
    for i in range(len(ds)):
        pair = ds.pair(i)
        assert pair.template.identity == pair.search.identity
        assert list(pair.template.box) == boxes[pair.template.image]
        item = ds[i]
        assert item["label"] == 1 and item["search"].shape[-1] == 127


def test_bad_requests_leave_nothing_behind(artwork, tmp_path):
    with pytest.raises(FileExistsError):
        generate_real_artwork(artwork, num_scenes=1, seed=0)
    with pytest.raises(InvalidArgumentError):
        generate_real_artwork(tmp_path / "none", num_scenes=0, seed=0)
    assert not (tmp_path / "none").exists()
    with pytest.raises(ConfigError, match="catalog pairs only"):
        build_pair_dataset(
            TrainConfig(
                data=(DataSourceConfig(kind="real", root=str(artwork), pair_mode="category"),)
            ),
            split="train",
            exemplar_size=63,
            search_size=127,
            context_amount=0.5,
        )


def test_a_malformed_catalog_box_is_a_clear_error(artwork, tmp_path):
    doc = json.loads((artwork / "annotations.json").read_text())
    doc["products"][0]["catalog_box"] = [0, 0, 10]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "annotations.json").write_text(json.dumps(doc))
    (bad / "images").symlink_to(artwork / "images")
    (bad / "catalog").symlink_to(artwork / "catalog")
    source = DataSourceConfig(kind="real", root=str(bad), pair_mode="catalog")
    with pytest.raises(ConfigError, match="catalog_box"):
        build_pair_dataset(
            TrainConfig(data=(source,)),
            split="train",
            exemplar_size=63,
            search_size=127,
            context_amount=0.5,
        )
