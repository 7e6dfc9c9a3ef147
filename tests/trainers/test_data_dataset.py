"""The pair dataset as the trainer sees it: the item contract, determinism per
``(seed, epoch, index)`` whatever the DataLoader workers, crop placement, source mixing,
negative rates, validation sets and the builder's configuration errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from matcher.errors import ConfigError
from matcher.train_config import AugmentConfig, DataSourceConfig, TrainConfig
from tests.trainers.data_layouts import write_coco, write_got10k
from trainers.data import PairDataset, build_pair_dataset
from trainers.data.crops import context_side

Z, X = 63, 127
GEOMETRY = {"exemplar_size": Z, "search_size": X, "context_amount": 0.5}
STILL = AugmentConfig(template_shift=0, template_scale=0, search_shift=0, search_scale=0, color=0)
BUSY = AugmentConfig(
    template_shift=4,
    template_scale=0.05,
    search_shift=24,
    search_scale=0.18,
    blur=0.3,
    motion_blur=0.3,
    flip=0.5,
    color=1.0,
    gray=0.2,
)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    coco = write_coco(root / "coco", num_images=6)
    write_got10k(root / "got", sequences=3)
    return {
        "coco": DataSourceConfig(
            kind="coco", root=str(root / "coco" / "images"), annotations=str(coco)
        ),
        "got": DataSourceConfig(kind="got10k", root=str(root / "got")),
        "one_track": root,
    }


def _build(*sources, split="train", epoch_length=None, **overrides) -> PairDataset:
    settings = {"steps_per_epoch": 3, "batch_size": 4, "augment": BUSY, **overrides}
    key = "data" if split == "train" else "val_data"
    train = TrainConfig(**{key: sources}, **settings)
    return build_pair_dataset(train, split=split, epoch_length=epoch_length, **GEOMETRY)


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_items_follow_the_contract_and_collate(layouts):
    ds = _build(layouts["coco"], layouts["got"], negative_ratio=0.5)
    assert len(ds) == 12
    item = ds[0]
    expected = {
        "template": ((3, Z, Z), torch.uint8),
        "search": ((3, X, X), torch.uint8),
        "template_box": ((4,), torch.float32),
        "search_box": ((4,), torch.float32),
        "search_mask": ((X, X), torch.uint8),
        "has_mask": ((), torch.bool),
        "label": ((), torch.int64),
        "identity": ((), torch.int64),
    }
    assert {k: (tuple(v.shape), v.dtype) for k, v in item.items()} == expected
    assert type(item["template"]) is torch.Tensor  # plain tensors, not tv_tensors
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["search"].shape == (4, 3, X, X) and batch["label"].shape == (4,)
    assert set(batch["search_mask"].unique().tolist()) <= {0, 1}
    assert ds[-1] is not None
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_items_are_deterministic_per_seed_epoch_and_index(layouts):
    ds = _build(layouts["coco"], layouts["got"], negative_ratio=0.3)
    again = _build(layouts["coco"], layouts["got"], negative_ratio=0.3)
    forward = [ds[i] for i in range(len(ds))]
    backward = [again[i] for i in reversed(range(len(ds)))][::-1]
    assert all(_equal(a, b) for a, b in zip(forward, backward, strict=True))
    ds.set_epoch(1)
    assert not all(_equal(ds[i], forward[i]) for i in range(len(ds)))
    ds.set_epoch(0)
    assert _equal(ds[5], forward[5])
    other_seed = _build(layouts["coco"], layouts["got"], negative_ratio=0.3, seed=1)
    assert not _equal(other_seed[0], forward[0])


def test_worker_count_does_not_change_the_batches(layouts):
    ds = _build(layouts["coco"], layouts["got"], negative_ratio=0.3)
    ds.set_epoch(2)
    single = list(DataLoader(ds, batch_size=3, num_workers=0))
    multi = list(DataLoader(ds, batch_size=3, num_workers=2))
    assert len(single) == len(multi) == 4
    assert all(_equal(a, b) for a, b in zip(single, multi, strict=True))


def test_template_sits_centred_at_the_context_scale(layouts):
    ds = _build(layouts["coco"], augment=STILL, epoch_length=20, negative_ratio=0.5)
    for i in range(len(ds)):
        pair, item = ds.pair(i), ds[i]
        for key, view, out in (("template_box", pair.template, Z), ("search_box", pair.search, X)):
            box = np.asarray(view.box)
            b = item[key].numpy()  # at the crop centre, at the template's scale
            np.testing.assert_allclose((b[:2] + b[2:]) / 2, out / 2, atol=1e-3)
            size = (box[2:] - box[:2]) * Z / context_side(box, 0.5)
            np.testing.assert_allclose(b[2:] - b[:2], size, rtol=1e-4)


def test_jitter_stays_within_its_ranges(layouts):
    ds = _build(layouts["coco"], layouts["got"], negative_ratio=0.3, epoch_length=60)
    aug = BUSY
    for i in range(len(ds)):
        pair, item = ds.pair(i), ds[i]
        for key, view, out, shift, scale in (
            ("template_box", pair.template, Z, aug.template_shift, aug.template_scale),
            ("search_box", pair.search, X, aug.search_shift, aug.search_scale),
        ):
            b = item[key].numpy()
            box = np.asarray(view.box)
            size = (box[2:] - box[:2]) * Z / context_side(box, 0.5)
            # flips mirror the centre about the crop centre: the offset keeps its size
            assert np.all(np.abs((b[:2] + b[2:]) / 2 - out / 2) <= shift + 1e-3)
            got = b[2:] - b[:2]
            assert np.all(got >= size / (1 + scale) - 1e-3)
            assert np.all(got <= size / (1 - scale) + 1e-3)


def test_sources_mix_by_ratio(layouts):
    coco = layouts["coco"]
    got = DataSourceConfig(kind="got10k", root=layouts["got"].root, ratio=3.0)
    ds = _build(coco, got, epoch_length=2000, negative_ratio=0.2)
    sources = np.array([ds.pair(i).source for i in range(len(ds))])
    assert abs(np.mean(sources == 1) - 0.75) < 0.035


def test_negative_and_lookalike_rates(layouts):
    ds = _build(layouts["coco"], epoch_length=2000, negative_ratio=0.3, same_category_negatives=0.5)
    pairs = [ds.pair(i) for i in range(len(ds))]
    negatives = [p for p in pairs if p.label == 0]
    assert abs(len(negatives) / len(pairs) - 0.3) < 0.035
    assert abs(np.mean([p.distractor for p in negatives]) - 0.5) < 0.07
    for p in pairs:
        same = p.template.identity == p.search.identity
        assert same == (p.label == 1)
        if p.distractor:
            assert p.template.group == p.search.group is not None


def test_random_negatives_come_from_any_source(layouts):
    ds = _build(
        layouts["coco"], layouts["got"], epoch_length=400, negative_ratio=1.0,
        same_category_negatives=0.0,
    )  # fmt: skip
    crossings = {(p.template.identity[0], p.search.identity[0]) for p in map(ds.pair, range(400))}
    assert crossings == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_validation_set_is_fixed_and_unaugmented(layouts):
    ds = _build(layouts["coco"], split="val", val_pairs=6)
    assert len(ds) == 6
    first = [ds[i] for i in range(6)]
    ds.set_epoch(3)
    assert all(_equal(ds[i], first[i]) for i in range(6))
    train = _build(layouts["coco"], epoch_length=6)
    assert not all(_equal(train[i], first[i]) for i in range(6))
    for item in first:  # no template jitter: the template box is centred
        t = item["template_box"].numpy()
        np.testing.assert_allclose((t[:2] + t[2:]) / 2, Z / 2, atol=1e-3)


def test_lengths(layouts):
    assert len(_build(layouts["coco"])) == 12
    assert len(_build(layouts["coco"], epoch_length=7)) == 7
    assert len(_build(layouts["coco"], split="val", val_pairs=5)) == 5


def test_builder_configuration_errors(layouts, tmp_path):
    coco = layouts["coco"]
    with pytest.raises(ConfigError, match=r"train\.data lists no pair sources"):
        _build()
    with pytest.raises(ConfigError, match=r"train\.val_data lists no pair sources"):
        build_pair_dataset(TrainConfig(data=(coco,)), split="val", **GEOMETRY)
    with pytest.raises(ConfigError, match="split"):
        build_pair_dataset(TrainConfig(data=(coco,)), split="test", **GEOMETRY)
    with pytest.raises(ConfigError, match=r"train.data\[1\].ratio"):
        _build(coco, DataSourceConfig(kind="got10k", root=layouts["got"].root, ratio=0.0))
    with pytest.raises(ConfigError, match="unknown kind 'kitti'; valid kinds: coco, synth"):
        _build(DataSourceConfig(kind="kitti", root=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"train\.augment\.flip"):
        _build(coco, augment=AugmentConfig(flip=2.0))
    with pytest.raises(ConfigError, match=r"train\.augment\.search_scale"):
        _build(coco, augment=AugmentConfig(search_scale=1.0))
    with pytest.raises(ConfigError, match="negative_ratio"):
        _build(coco, negative_ratio=1.5)
    with pytest.raises(ConfigError, match="exemplar_size <= search_size"):
        build_pair_dataset(
            TrainConfig(data=(coco,)), split="train", exemplar_size=127, search_size=63,
            context_amount=0.5,
        )  # fmt: skip
    write_got10k(tmp_path / "one", sequences=1)
    single = DataSourceConfig(kind="got10k", root=str(tmp_path / "one"))
    with pytest.raises(ConfigError, match="at least two distinct objects"):
        _build(single, negative_ratio=0.2)
    assert len(_build(single, negative_ratio=0.0)) == 12
