"""The COCO-format pair source on tiny sets written here (polygons, compressed and
uncompressed RLE, no masks), its three pair modes, look-alike negatives, the synthetic
set generated on first use, and the configuration errors."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest

from matcher.errors import ConfigError
from matcher.train_config import AugmentConfig, DataSourceConfig, TrainConfig
from tests.trainers.data_layouts import box_iou as iou
from tests.trainers.data_layouts import bright, mask_iou, region_box, write_coco
from trainers.data import CocoSource, build_pair_dataset

GEOMETRY = {"exemplar_size": 63, "search_size": 127, "context_amount": 0.5}


def _train(*sources: DataSourceConfig, **overrides) -> TrainConfig:
    settings = {"steps_per_epoch": 4, "batch_size": 4, "negative_ratio": 0.0, **overrides}
    return TrainConfig(data=sources, **settings)


def _coco(root, path, **kw) -> DataSourceConfig:
    return DataSourceConfig(kind="coco", root=str(root / "images"), annotations=str(path), **kw)


def _dataset(train: TrainConfig, **kw):
    return build_pair_dataset(train, split="train", **{**GEOMETRY, **kw})


def _search_object(item) -> np.ndarray:
    """Bright pixels of the search crop within 3 px of the search box (other objects are
    further away)."""
    region = bright(item["search"].numpy())
    x0, y0, x1, y1 = item["search_box"].numpy()
    near = np.zeros_like(region)
    near[max(0, int(y0) - 3) : int(y1) + 3, max(0, int(x0) - 3) : int(x1) + 3] = True
    return region & near


@pytest.mark.parametrize("segmentation", ["polygon", "rle", "rle_list"])
def test_instance_pairs_have_aligned_boxes_and_masks(tmp_path, segmentation):
    path = write_coco(tmp_path, segmentation=segmentation)
    ds = _dataset(_train(_coco(tmp_path, path), augment=AugmentConfig(flip=0.5, gray=0.3)))
    for i in range(len(ds)):
        item = ds[i]
        pair = ds.pair(i)
        assert pair.template.identity == pair.search.identity
        assert item["label"] == 1 and bool(item["has_mask"])
        obj = _search_object(item)
        mask = item["search_mask"].numpy().astype(bool)
        assert mask_iou(obj, mask) >= 0.85
        assert iou(region_box(mask), item["search_box"].numpy()) >= 0.9
        t_region = bright(item["template"].numpy())
        x0, y0, x1, y1 = item["template_box"].numpy()
        assert t_region[int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2].all()


def test_crowd_and_tiny_annotations_are_skipped(tmp_path):
    path = write_coco(tmp_path, num_images=3)
    document = json.loads(path.read_text())
    source = CocoSource(
        document,
        image_root=tmp_path / "images",
        annotation_dir=tmp_path,
        mode="instance",
        index=0,
        name="test",
    )
    assert len(source) == 6  # 2 per image; the crowd and the 2-px box are gone
    assert source.num_identities == 6


def test_without_masks_the_mask_is_zero(tmp_path):
    path = write_coco(tmp_path, segmentation="none")
    item = _dataset(_train(_coco(tmp_path, path)))[0]
    assert not bool(item["has_mask"]) and int(item["search_mask"].sum()) == 0


def test_category_pairs_come_from_different_images(tmp_path):
    path = write_coco(tmp_path, num_images=6)
    ds = _dataset(_train(_coco(tmp_path, path, pair_mode="category")), epoch_length=40)
    for i in range(len(ds)):
        pair = ds.pair(i)
        assert pair.template.identity == pair.search.identity  # (source, category)
        assert pair.template.image != pair.search.image


def test_instance_negatives_prefer_same_category_distractors(tmp_path):
    path = write_coco(tmp_path, num_images=6)
    train = _train(_coco(tmp_path, path), negative_ratio=1.0, same_category_negatives=1.0)
    ds = _dataset(train, epoch_length=60)
    for i in range(len(ds)):
        pair = ds.pair(i)
        assert pair.label == 0 and pair.distractor
        assert pair.template.identity != pair.search.identity
        assert pair.template.group == pair.search.group  # same category, other instance
    item = ds[0]
    assert item["label"] == 0


def test_catalog_mode_uses_the_product_photo_as_reference(tmp_path):
    path = write_coco(tmp_path, products=True)
    ds = _dataset(_train(_coco(tmp_path, path, pair_mode="catalog")))
    for i in range(6):
        pair = ds.pair(i)
        assert "catalog" in pair.template.image and pair.template.box is None
        assert pair.search.identity == pair.template.identity
        item = ds[i]
        box = item["template_box"].numpy()
        # foreground 30x40 of the 80x80 photo: s_z = sqrt(65 * 75), crop 63 px
        expected = np.array([30, 40]) * 63 / np.sqrt(65 * 75)
        np.testing.assert_allclose(box[2:] - box[:2], expected, rtol=0.08)
        np.testing.assert_allclose((box[:2] + box[2:]) / 2, 31.5, atol=4.5)
        assert bool(item["has_mask"])


def test_product_sets_use_families_as_lookalike_groups(tmp_path):
    # categories 1 and 2 form family "tools"; 3 is alone in "food"
    path = write_coco(tmp_path, products=True, num_images=6)
    train = _train(
        _coco(tmp_path, path, pair_mode="catalog"), negative_ratio=1.0, same_category_negatives=1.0
    )
    ds = _dataset(train, epoch_length=80)
    seen = set()
    for i in range(len(ds)):
        pair = ds.pair(i)
        ref, other = pair.template.identity[1], pair.search.identity[1]
        assert ref != other
        if pair.distractor:
            assert {ref, other} == {1, 2}
        seen.add(pair.distractor)
    assert seen == {True, False}  # product 3 has no look-alike: a random negative


# -- synthetic set ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tmp_path_factory.mktemp("synth") / "set"


@pytest.mark.parametrize("mode", ["catalog", "instance", "category"])
def test_synth_source_is_generated_on_first_use(synth_root, mode, caplog):
    cfg = DataSourceConfig(
        kind="synth", root=str(synth_root), pair_mode=mode, products=4, scenes=6, seed=2
    )
    first = not synth_root.exists()
    with caplog.at_level(logging.INFO, logger="trainers.data.builder"):
        ds = _dataset(_train(cfg, negative_ratio=0.5, workers=1), epoch_length=12)
    assert ("generating a synthetic set" in caplog.text) == first
    assert (synth_root / "annotations.json").is_file()
    products = {
        p["id"]: p for p in json.loads((synth_root / "annotations.json").read_text())["products"]
    }
    for i in range(len(ds)):
        item = ds[i]
        pair = ds.pair(i)
        assert item["template"].shape == (3, 63, 63) and item["search"].shape == (3, 127, 127)
        assert bool(item["has_mask"])
        mask = item["search_mask"].numpy().astype(bool)
        if mask.any():  # the visible part lies in the box of the visible part
            assert iou(region_box(mask), item["search_box"].numpy()) >= 0.9
        if mode == "catalog":
            assert pair.template.image.endswith(products[pair.template.identity[1]]["catalog"])
        if pair.distractor:
            lookalikes = products[pair.template.identity[1]]["lookalikes"]
            assert pair.search.identity[1] in lookalikes


# -- errors ---------------------------------------------------------------------------------


def test_configuration_errors_name_the_source(tmp_path):
    path = write_coco(tmp_path)
    with pytest.raises(ConfigError, match=r"train.data\[0\].*does not exist"):
        _dataset(_train(_coco(tmp_path, tmp_path / "missing.json")))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read COCO"):
        _dataset(_train(_coco(tmp_path, bad)))
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(ConfigError, match="no 'annotations' list"):
        _dataset(_train(_coco(tmp_path, bad)))
    with pytest.raises(ConfigError, match="catalog"):
        _dataset(_train(_coco(tmp_path, path, pair_mode="catalog")))
    with pytest.raises(ConfigError, match="needs 'annotations'"):
        _dataset(_train(DataSourceConfig(kind="coco", root=str(tmp_path / "images"))))
    with pytest.raises(ConfigError, match="image folder"):
        _dataset(_train(_coco(tmp_path / "nowhere", path)))


def test_missing_images_and_unusable_sets_are_refused(tmp_path):
    path = write_coco(tmp_path, num_images=1)
    with pytest.raises(ConfigError, match="no usable annotations for pair_mode 'category'"):
        _dataset(_train(_coco(tmp_path, path, pair_mode="category")))
    (tmp_path / "images" / "0001.png").unlink()
    with pytest.raises(ConfigError, match=r"0001.png does not exist"):
        _dataset(_train(_coco(tmp_path, path)))
    document = json.loads(path.read_text())
    document["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="unknown category 99"):
        _dataset(_train(_coco(tmp_path, path)))


def test_lvis_records_without_file_name_use_the_coco_url(tmp_path):
    path = write_coco(tmp_path)
    document = json.loads(path.read_text())
    for image in document["images"]:
        name = image.pop("file_name")
        image["coco_url"] = f"http://images.cocodataset.org/train2017/{name}"
    for ann in document["annotations"]:
        ann.pop("iscrowd", None)  # LVIS has no crowd flag
        ann.pop("id")
    path.write_text(json.dumps(document))
    ds = _dataset(_train(_coco(tmp_path, path)))
    assert ds.pair(0).template.image.startswith(str(tmp_path / "images"))
    assert ds[0]["label"] == 1


def test_concurrent_builders_generate_the_synth_set_once(tmp_path, caplog):
    cfg = DataSourceConfig(kind="synth", root=str(tmp_path / "s"), products=2, scenes=2)
    train = _train(cfg, workers=1)
    results, errors = [], []

    def build():
        try:
            results.append(len(_dataset(train)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="trainers.data.builder"):
        threads = [threading.Thread(target=build) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors and results == [16, 16]
    assert caplog.text.count("generating a synthetic set") == 1
