"""Video pair sources on tiny sets written here in GOT-10k, LaSOT and ImageNet-VID layout:
unusable frames are never drawn, the frame gap is respected, boxes land on the object
in the crops, classes make look-alike groups, and corrupt annotations are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matcher.errors import ConfigError
from matcher.train_config import DataSourceConfig, TrainConfig
from tests.trainers.data_layouts import box_iou as iou
from tests.trainers.data_layouts import (
    bright,
    region_box,
    track_box,
    write_got10k,
    write_lasot,
    write_vid,
)
from trainers.data import build_pair_dataset
from trainers.data.video import load_got10k, load_lasot, load_vid

GEOMETRY = {"exemplar_size": 63, "search_size": 127, "context_amount": 0.5}


def _dataset(*sources: DataSourceConfig, length: int = 40, **overrides):
    settings = {"negative_ratio": 0.0, **overrides}
    train = TrainConfig(data=sources, **settings)
    return build_pair_dataset(train, split="train", epoch_length=length, **GEOMETRY)


def _frame(view) -> int:
    return int(Path(view.image).stem)


def _near(item, key: str, image_key: str) -> np.ndarray:
    region = bright(item[image_key].numpy())
    x0, y0, x1, y1 = item[key].numpy()
    near = np.zeros_like(region)
    near[max(0, int(y0) - 3) : int(y1) + 3, max(0, int(x0) - 3) : int(x1) + 3] = True
    return region & near


def _check_items(ds, count: int = 8) -> None:
    """Boxes enclose the bright object in both crops; video sources have no masks."""
    for i in range(count):
        item = ds[i]
        assert not bool(item["has_mask"]) and int(item["search_mask"].sum()) == 0
        for box, image in (("template_box", "template"), ("search_box", "search")):
            assert iou(region_box(_near(item, box, image)), item[box].numpy()) >= 0.85


@pytest.fixture(scope="module")
def got(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("got10k")
    write_got10k(root)
    return root


@pytest.fixture(scope="module")
def lasot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lasot")
    write_lasot(root)
    return root


@pytest.fixture(scope="module")
def vid(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vid")
    write_vid(root)
    return root


def test_got10k_tracks_skip_absent_and_degenerate_frames(got):
    tracks = load_got10k(got, "train", name="t")
    assert len(tracks) == 3
    for s, track in enumerate(tracks):
        assert track.frames.tolist() == [1, 2, 4, 6, 7, 8]  # 3 absent, 5 zero width
        assert track.group == f"cls{s % 2}"
        np.testing.assert_allclose(track.boxes[0], track_box(s, 0))


def test_got10k_pairs(got):
    ds = _dataset(DataSourceConfig(kind="got10k", root=str(got), max_gap=2))
    for i in range(len(ds)):
        pair = ds.pair(i)
        assert pair.template.identity == pair.search.identity
        a, b = _frame(pair.template), _frame(pair.search)
        assert abs(a - b) <= 2 and {a, b}.isdisjoint({3, 5})
        assert pair.template.image.startswith(str(got / "train"))
    _check_items(ds)


def test_zero_gap_gives_the_same_frame(got):
    ds = _dataset(DataSourceConfig(kind="got10k", root=str(got), max_gap=0))
    assert all(ds.pair(i).template.image == ds.pair(i).search.image for i in range(20))


def test_lasot_tracks_and_pairs(lasot):
    tracks = load_lasot(lasot, name="t")
    assert [t.group for t in tracks] == ["cat", "cat", "dog", "dog"]
    assert all(t.frames.tolist() == [1, 3, 4, 5, 7, 8] for t in tracks)
    ds = _dataset(DataSourceConfig(kind="lasot", root=str(lasot), max_gap=3))
    for i in range(len(ds)):
        pair = ds.pair(i)
        a, b = _frame(pair.template), _frame(pair.search)
        assert abs(a - b) <= 3 and {a, b}.isdisjoint({2, 6})
        assert "/img/" in pair.search.image
    _check_items(ds)


def test_vid_tracks_and_pairs(vid):
    tracks = load_vid(vid, "train", name="t")
    assert len(tracks) == 4
    assert [t.frames.tolist() for t in tracks[:2]] == [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3]]
    assert [t.group for t in tracks[:2]] == ["n00", "n01"]
    np.testing.assert_allclose(tracks[1].boxes[2], track_box(1, 2))
    ds = _dataset(DataSourceConfig(kind="vid", root=str(vid), max_gap=100))
    for i in range(len(ds)):
        pair = ds.pair(i)
        assert pair.template.identity == pair.search.identity
        assert pair.search.image.endswith(".JPEG") and "/Data/VID/train/" in pair.search.image
    _check_items(ds)


def test_video_negatives_use_same_class_tracks(lasot):
    ds = _dataset(
        DataSourceConfig(kind="lasot", root=str(lasot)),
        negative_ratio=1.0,
        same_category_negatives=1.0,
    )
    for i in range(len(ds)):
        pair = ds.pair(i)
        assert pair.label == 0 and pair.distractor
        assert pair.template.identity != pair.search.identity
        assert Path(pair.template.image).parts[-4] == Path(pair.search.image).parts[-4]  # class


def test_corrupt_video_annotations_are_refused(tmp_path):
    write_got10k(tmp_path / "g", sequences=2)
    seq = tmp_path / "g" / "train" / "GOT-10k_Train_000001"
    (seq / "absence.label").write_text("0\n1\n")
    with pytest.raises(ConfigError, match=r"train.data\[0\].*absence.label has 2 labels"):
        _dataset(DataSourceConfig(kind="got10k", root=str(tmp_path / "g")))
    (seq / "groundtruth.txt").write_text("1,2,3\n")
    with pytest.raises(ConfigError, match=r"groundtruth.txt:1 is not 'x,y,w,h'"):
        _dataset(DataSourceConfig(kind="got10k", root=str(tmp_path / "g")))
    with pytest.raises(ConfigError, match="split folder"):
        _dataset(DataSourceConfig(kind="got10k", root=str(tmp_path / "g"), split="val"))

    write_vid(tmp_path / "v", snippets=1, frames=2)
    xml = next((tmp_path / "v" / "Annotations").rglob("000001.xml"))
    xml.write_text("<annotation><object><trackid>0</trackid>")
    with pytest.raises(ConfigError, match="corrupt ImageNet-VID annotation"):
        _dataset(DataSourceConfig(kind="vid", root=str(tmp_path / "v")))

    write_lasot(tmp_path / "l", classes=("cat",), per_class=1)
    (tmp_path / "l" / "cat" / "cat-1" / "out_of_view.txt").write_text("1," * 7 + "1")
    (tmp_path / "l" / "cat" / "cat-1" / "full_occlusion.txt").write_text("0," * 7 + "0")
    with pytest.raises(ConfigError, match="no usable track"):
        _dataset(DataSourceConfig(kind="lasot", root=str(tmp_path / "l")))
    with pytest.raises(ConfigError, match="LaSOT folder"):
        _dataset(DataSourceConfig(kind="lasot", root=str(tmp_path / "none")))


def test_missing_frames_and_modes_are_refused(tmp_path):
    write_got10k(tmp_path, sequences=1)
    (tmp_path / "train" / "GOT-10k_Train_000001" / "00000001.jpg").unlink()
    with pytest.raises(ConfigError, match=r"00000001\.jpg does not exist"):
        _dataset(DataSourceConfig(kind="got10k", root=str(tmp_path)))
    with pytest.raises(ConfigError, match="applies to coco/synth"):
        _dataset(DataSourceConfig(kind="got10k", root=str(tmp_path), pair_mode="category"))
