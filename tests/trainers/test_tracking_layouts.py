"""Tracking benchmark folders: the official layouts, PySOT's JSON, synthetic sequences
written in each layout, result files, and one clear error naming the file at fault."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matcher.errors import DatasetLayoutError, TrackingResultsError, UnknownComponentError
from trainers.data.synth.video_layouts import LAYOUTS, write_video_dataset
from trainers.evaluate.tracking import results as res
from trainers.evaluate.tracking.datasets import get_benchmark, load_dataset

BENCHMARK_OF = {
    "otb": "OTB100",
    "uav123": "UAV123",
    "lasot": "LaSOT",
    "got10k": "GOT-10k",
    "vot": "VOT2018",
    "vot-lt": "VOT2018-LT",
}
SIZE = (64, 96)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth_layouts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    return {
        layout: write_video_dataset(
            root / layout,
            layout=layout,
            sequences=2,
            frames=6,
            seed=3,
            image_size=SIZE,
            progress=False,
        )
        for layout in LAYOUTS
    }


def test_cli_layout_names_match_the_generator():
    import api.cli_synth_video as cli

    assert tuple(LAYOUTS) == cli.LAYOUTS
    assert cli.BENCHMARK_OF == BENCHMARK_OF


@pytest.mark.parametrize("layout", list(BENCHMARK_OF))
def test_synthetic_sequences_read_back_in_their_layout(synth_layouts, layout):
    dataset = load_dataset(BENCHMARK_OF[layout], synth_layouts[layout])
    assert dataset.source == "layout"
    names = [s.name for s in dataset.sequences]
    expected = {
        "otb": ["Synth01", "Synth02-1", "Synth02-2"],  # Synth02 has two targets
        "uav123": ["synth1", "synth2"],
        "lasot": ["product-1", "product-2"],
        "got10k": ["GOT-10k_Val_000001", "GOT-10k_Val_000002"],
        "vot": ["product1", "product2"],
        "vot-lt": ["product1", "product2"],
    }[layout]
    assert names == expected
    for seq in dataset.sequences:
        assert len(seq) == 6 and len(seq.frames) == 6
        assert all(Path(f).is_file() for f in seq.frames)
        assert seq.size() == (SIZE[1], SIZE[0])
        assert seq.gt.shape == (6, 8 if layout == "vot" else 4)
        first = seq.gt[0]
        assert np.all(np.isfinite(first)) and (layout == "vot" or first[2] > 0)
    seq = dataset.sequences[0]
    if layout == "vot":
        assert set(seq.tags) == {
            "camera_motion", "illum_change", "motion_change", "size_change", "occlusion"
        }  # fmt: skip
        assert all(t.shape == (6,) for t in seq.tags.values())
    if layout in ("lasot", "got10k"):
        assert seq.visible is not None and seq.visible.dtype == bool and seq.visible[0]
    if layout == "uav123":
        assert "Similar Object" in seq.attributes


def test_synthetic_sequences_are_reproducible(tmp_path, synth_layouts):
    again = write_video_dataset(
        tmp_path / "vot", layout="vot", sequences=2, frames=6, seed=3, image_size=SIZE,
        progress=False,
    )  # fmt: skip
    assert _digest(again) == _digest(synth_layouts["vot"])


def test_synth_refuses_a_foreign_folder_and_overwrites_its_own(tmp_path):
    from matcher.errors import InvalidArgumentError

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="not written by synth --video"):
        write_video_dataset(
            foreign, layout="otb", sequences=1, frames=2, overwrite=True, image_size=SIZE,
            progress=False,
        )  # fmt: skip
    own = write_video_dataset(tmp_path / "own", layout="otb", sequences=1, frames=2,
                              image_size=SIZE, progress=False)  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="not empty"):
        write_video_dataset(own, layout="otb", sequences=1, frames=2, image_size=SIZE,
                            progress=False)  # fmt: skip
    write_video_dataset(own, layout="vot", sequences=1, frames=3, overwrite=True,
                        image_size=SIZE, progress=False)  # fmt: skip
    assert (own / "list.txt").read_text() == "product1\n"
    with pytest.raises(InvalidArgumentError, match="unknown layout"):
        write_video_dataset(tmp_path / "x", layout="otb2", sequences=1, frames=2)


# -- hand-made official layouts ------------------------------------------------------------


def _image(path: Path, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)


def _touch_frames(folder: Path, pattern: str, numbers) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / pattern.format(n)).touch()


def _boxes(count: int, start: int = 0) -> str:
    return "".join(f"{start + i}\t{i},5 7\n" for i in range(count))  # mixed separators


def test_otb_ranges_and_multi_target_sequences(tmp_path):
    _touch_frames(tmp_path / "David" / "img", "{:04d}.jpg", range(1, 771))
    (tmp_path / "David" / "groundtruth_rect.txt").write_text(_boxes(471))
    _touch_frames(tmp_path / "Jogging" / "img", "{:04d}.jpg", range(1, 5))
    (tmp_path / "Jogging" / "groundtruth_rect.1.txt").write_text(_boxes(4))
    (tmp_path / "Jogging" / "groundtruth_rect.2.txt").write_text(_boxes(4, 50))
    _touch_frames(tmp_path / "Human4" / "img", "{:04d}.jpg", range(1, 4))
    (tmp_path / "Human4" / "groundtruth_rect.1.txt").write_text("\n")  # empty, as in OTB
    (tmp_path / "Human4" / "groundtruth_rect.2.txt").write_text(_boxes(3))
    (tmp_path / "notes").mkdir()
    dataset = load_dataset("OTB2015", tmp_path)
    assert dataset.name == "OTB100"
    by_name = {s.name: s for s in dataset.sequences}
    assert list(by_name) == ["David", "Human4-2", "Jogging-1", "Jogging-2"]
    david = by_name["David"]
    assert len(david) == 471 and Path(david.frames[0]).name == "0300.jpg"
    assert Path(david.frames[-1]).name == "0770.jpg"
    assert by_name["Jogging-2"].gt[0].tolist() == [50, 0, 5, 7]
    (tmp_path / "Jogging" / "groundtruth_rect.2.txt").write_text(_boxes(5))
    with pytest.raises(DatasetLayoutError, match=r"groundtruth_rect\.2\.txt: 5 boxes for 4"):
        load_dataset("OTB100", tmp_path)


def test_uav123_sub_sequences_start_where_the_benchmark_says(tmp_path):
    anno = tmp_path / "anno" / "UAV123"
    anno.mkdir(parents=True)
    (anno / "car1_2.txt").write_text("1,2,3,4\nNaN,NaN,NaN,NaN\n5,6,7,8\n")
    (anno / "boat1.txt").write_text("1,2,3,4\n1,2,3,4\n")
    (anno / "att").mkdir()
    (anno / "att" / "boat1.txt").write_text("1,0,0,0,0,0,1,0,0,0,0,1\n")
    _touch_frames(tmp_path / "data_seq" / "UAV123" / "car1", "{:06d}.jpg", range(751, 754))
    _touch_frames(tmp_path / "data_seq" / "UAV123" / "boat1", "{:06d}.jpg", range(1, 3))
    dataset = load_dataset("uav123", tmp_path)
    car = dataset.sequences[1]
    assert car.name == "car1_2" and Path(car.frames[0]).name == "000751.jpg"
    assert np.isnan(car.gt[1]).all()
    assert dataset.attributes() == {
        "Out-of-View": ["boat1"], "Scale Variation": ["boat1"], "Similar Object": ["boat1"]
    }  # fmt: skip
    (anno / "car1_2.txt").write_text("1,2,3,4\n" * 4)  # one frame more than the folder has
    with pytest.raises(DatasetLayoutError, match=r"missing frame .*car1/000754\.jpg"):
        load_dataset("UAV123", tmp_path)


def test_lasot_test_split_and_visibility(tmp_path):
    for name in ("cat-1", "cat-2"):
        seq = tmp_path / "cat" / name
        _touch_frames(seq / "img", "{:08d}.jpg", range(1, 4))
        (seq / "groundtruth.txt").write_text("1,1,5,5\n0,0,0,0\n2,2,5,5\n")
        (seq / "full_occlusion.txt").write_text("0,0,1\n")
        (seq / "out_of_view.txt").write_text("0,1,0\n")
    assert len(load_dataset("LaSOT", tmp_path)) == 2  # no split file: every sequence
    (tmp_path / "testing_set.txt").write_text("cat-2\n")
    dataset = load_dataset("lasot", tmp_path)
    assert [s.name for s in dataset.sequences] == ["cat-2"]
    assert dataset.sequences[0].visible.tolist() == [True, False, False]


def test_got10k_val_split_labels_and_resolution(tmp_path):
    seq = tmp_path / "val" / "GOT-10k_Val_000001"
    _touch_frames(seq, "{:08d}.jpg", range(1, 4))
    (tmp_path / "val" / "list.txt").write_text("GOT-10k_Val_000001\n")
    (seq / "groundtruth.txt").write_text("1.5,2,3,4\n1,2,3,4\n1,2,3,4\n")
    (seq / "cover.label").write_text("8\n0\n3\n")
    (seq / "meta_info.ini").write_text("[METAINFO]\nresolution: (1280, 720)\n")
    for root in (tmp_path, tmp_path / "val"):
        s = load_dataset("GOT-10k", root).sequences[0]
        assert s.visible.tolist() == [True, False, True]
        assert s.size() == (1280, 720) and s.gt[0, 0] == 1.5


def test_vot_layouts_tags_color_folder_and_absent_targets(tmp_path):
    vot = tmp_path / "vot"
    (vot / "ants").mkdir(parents=True)
    (vot / "list.txt").write_text("ants\n")
    (vot / "ants" / "groundtruth.txt").write_text("1,1,9,1,9,9,1,9\n2,2,5,5\n")  # mixed
    (vot / "ants" / "occlusion.tag").write_text("1\n")  # short: the rest is 0
    _touch_frames(vot / "ants" / "color", "{:08d}.jpg", range(1, 3))
    seq = load_dataset("VOT2019", vot).sequences[0]
    assert seq.gt[1].tolist() == [2, 2, 7, 2, 7, 7, 2, 7]  # a box becomes its corners
    assert seq.tags["occlusion"].tolist() == [1, 0] and seq.tags["size_change"].sum() == 0
    assert Path(seq.frames[0]).parent.name == "color"
    lt = tmp_path / "lt"
    (lt / "bike").mkdir(parents=True)
    (lt / "list.txt").write_text("bike\n")
    (lt / "bike" / "groundtruth.txt").write_text("1,1,4,4\nnan,nan,nan,nan\n")
    _touch_frames(lt / "bike", "{:08d}.jpg", range(1, 3))
    seq = load_dataset("VOT2018-LT", lt).sequences[0]
    assert np.isnan(seq.gt[1]).all() and seq.tags == {}


def test_pysot_json_is_read_when_present(tmp_path):
    _image(tmp_path / "Car" / "img" / "0001.jpg", size=(40, 30))
    meta = {
        "Car": {
            "video_dir": "Car",
            "init_rect": [1, 2, 3, 4],
            "img_names": ["Car/img/0001.jpg", "Car/img/0002.jpg"],
            "gt_rect": [[1, 2, 3, 4], [2, 3, 4, 5]],
            "attr": ["IV"],
        }
    }
    (tmp_path / "OTB100.json").write_text(json.dumps(meta))
    dataset = load_dataset("OTB2015", tmp_path)
    assert dataset.source.endswith("OTB100.json")
    seq = dataset.sequences[0]
    assert seq.attributes == ("IV",) and seq.size() == (40, 30)
    assert seq.frames[1] == str(tmp_path / "Car" / "img" / "0002.jpg")
    (tmp_path / "OTB100.json").write_text('{"Car": {"img_names": []}}')
    with pytest.raises(DatasetLayoutError, match=r"OTB100\.json: video 'Car' is malformed"):
        load_dataset("OTB100", tmp_path)


@pytest.mark.parametrize(
    ("layout", "breakage", "message"),
    [
        ("vot", lambda r: (r / "list.txt").unlink(), r"missing file .*list\.txt"),
        ("vot", lambda r: (r / "product1" / "groundtruth.txt").write_text("1,2,x\n"),
         r"product1/groundtruth\.txt, line 1: not numbers"),
        ("vot", lambda r: (r / "product2" / "groundtruth.txt").write_text("1,2,3\n"),
         r"product2/groundtruth\.txt: expected 4 or 8 values"),
        ("vot", lambda r: (r / "product2" / "00000006.jpg").unlink(),
         r"missing frame .*product2/00000006\.jpg"),
        ("lasot", lambda r: (r / "testing_set.txt").write_text("product-9\n"),
         r"missing file .*product-9/groundtruth\.txt"),
        ("got10k", lambda r: (r / "val" / "list.txt").unlink(), r"missing file .*list\.txt"),
        ("uav123", lambda r: (r / "anno" / "UAV123" / "synth1.txt").write_text("1,2\n"),
         r"synth1\.txt: expected 4 values"),
    ],
)  # fmt: skip
def test_a_broken_layout_names_the_file(tmp_path, synth_layouts, layout, breakage, message):
    import shutil

    root = tmp_path / layout
    shutil.copytree(synth_layouts[layout], root)
    breakage(root)
    with pytest.raises(DatasetLayoutError, match=message):
        load_dataset(BENCHMARK_OF[layout], root)


def test_unknown_benchmark_and_missing_folder(tmp_path):
    with pytest.raises(UnknownComponentError, match="VOT2018-LT"):
        get_benchmark("VOT2020")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        load_dataset("OTB100", tmp_path / "nowhere")
    with pytest.raises(DatasetLayoutError, match="holds no OTB100 sequence"):
        load_dataset("OTB100", tmp_path)


# -- result files --------------------------------------------------------------------------


def test_result_files_old_otb_names_runs_and_errors(tmp_path):
    otb = get_benchmark("OTB100")
    folder = tmp_path / "OTB100" / "t"
    folder.mkdir(parents=True)
    (folder / "jogging_1.txt").write_text("1,2,3,4\n1\t2 3,4\n\n")  # PySOT's older name
    (boxes,) = res.read_boxes(folder, otb, "Jogging-1", length=2)
    assert boxes.tolist() == [[1, 2, 3, 4], [1, 2, 3, 4]]
    with pytest.raises(TrackingResultsError, match=r"jogging_1\.txt: 2 lines for 3 frames"):
        res.read_boxes(folder, otb, "Jogging-1", length=3)
    with pytest.raises(TrackingResultsError, match=r"missing result file .*Basket\.txt"):
        res.read_boxes(folder, otb, "Basket", length=3)
    (folder / "Car.txt").write_text("1,2,3\n")
    with pytest.raises(TrackingResultsError, match=r"Car\.txt: expected 4 values"):
        res.read_boxes(folder, otb, "Car", length=1)
    vot = tmp_path / "VOT2018" / "t" / "baseline" / "ants"
    vot.mkdir(parents=True)
    for run in range(1, 4):
        (vot / f"ants_{run:03d}.txt").write_text(f"1\n{run},0,5,5\n")
    assert len(res.read_vot_runs(vot.parents[1], "ants", 2)) == 1  # not 15 runs: the first
    for run in range(4, 16):
        (vot / f"ants_{run:03d}.txt").write_text("1\n2\n")
    assert len(res.read_vot_runs(vot.parents[1], "ants", 2)) == 15
    lt = tmp_path / "VOT2018-LT" / "t" / "longterm" / "bike"
    lt.mkdir(parents=True)
    (lt / "bike_001.txt").write_text("1\n1,1,4,4\n")
    (lt / "bike_001_confidence.value").write_text("\n0.5\n")
    regions, scores = res.read_vot_lt(lt.parents[1], "bike", 2)
    assert regions.row(0) == [1.0] and np.isnan(scores[0]) and scores[1] == 0.5
    with pytest.raises(TrackingResultsError, match="2 regions and 2 confidences for 3 frames"):
        res.read_vot_lt(lt.parents[1], "bike", 3)
    assert res.list_trackers(tmp_path, get_benchmark("VOT2018")) == ["t"]
    with pytest.raises(TrackingResultsError, match="no tracker 'x\\*'"):
        res.list_trackers(tmp_path, get_benchmark("VOT2018"), ["x*"])
