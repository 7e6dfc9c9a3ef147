"""The benchmark runner's protocols (with a scripted tracker, no network), the scores that
have no PySOT counterpart (GOT-10k's AO), the report file and the plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matcher.errors import InvalidArgumentError
from matcher.structures import Instance
from trainers.evaluate.tracking import ope
from trainers.evaluate.tracking import results as res
from trainers.evaluate.tracking.datasets import Sequence, TrackingDataset, get_benchmark
from trainers.evaluate.tracking.plots import write_plots
from trainers.evaluate.tracking.region import Regions, vot_overlap, vot_overlaps
from trainers.evaluate.tracking.report import merge_report, to_markdown
from trainers.evaluate.tracking.runner import TrackerSpec, init_box, run_benchmark, run_sequence
from trainers.evaluate.tracking.scoring import score_trackers

W, H = 64, 48


class ScriptedTracker:
    """Follows the truth (``x, y, w, h`` boxes), except at ``lost`` frames (far away). The
    frame index is read from the frame itself (its first pixel's red value)."""

    def __init__(self, gt: np.ndarray, lost: set[int], log: list) -> None:
        self.gt, self.lost, self.log = gt, lost, log

    def init(self, frame, box):
        self.log.append(("init", int(frame[0, 0, 0]), tuple(round(v, 3) for v in box)))

    def track(self, frame) -> Instance:
        index = int(frame[0, 0, 0])
        x, y, w, h = self.gt[index]
        if index in self.lost:
            x, y = x + 30, y + 30
        return Instance(box=(x, y, x + w, y + h), score=0.25 + 0.05 * (index % 3))


def _sequence(tmp_path: Path, name: str, n: int, gt: np.ndarray) -> Sequence:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        path = folder / f"{i + 1:08d}.png"
        Image.new("RGB", (W, H), (i, 0, 0)).save(path)
        frames.append(str(path))
    return Sequence(name, tuple(frames), gt)


def _boxes(n: int) -> np.ndarray:
    return np.array([[4 + i, 6, 20, 16] for i in range(n)], np.float64)


def test_vot_supervised_protocol_markers_and_reinitialisation(tmp_path):
    gt = _boxes(20)
    seq = _sequence(tmp_path, "ants", 20, gt)
    log: list = []
    state: dict = {}

    def factory():
        state.setdefault("tracker", ScriptedTracker(gt, {3, 16}, log))
        return state["tracker"]

    record = run_sequence(factory, seq, "vot")
    lines = [r if len(r) == 1 else "box" for r in record.regions]
    # Lost at frame 3: failure marker, 4 skipped frames, re-initialised at 3 + 5 = 8.
    assert lines[:10] == [[1], "box", "box", [2], [0], [0], [0], [0], [1], "box"]
    assert lines[16:] == [[2], [0], [0], [0]]  # the last re-initialisation never comes
    assert record.failures == 2
    assert [entry[1] for entry in log] == [0, 8]
    # PySOT's initial box of a VOT rectangle is the rectangle itself (x .. x + w - 1 corners).
    assert log[0][2] == (4.0, 6.0, 24.0, 22.0)
    written = res.write_record(tmp_path / "out", get_benchmark("VOT2018"), record)
    text = written[0].read_text().splitlines()
    assert text[0] == "1" and text[3] == "2" and text[4] == "0"
    assert text[1] == "5.0000,6.0000,20.0000,16.0000"


def test_ope_and_long_term_records(tmp_path):
    gt = _boxes(6)
    seq = _sequence(tmp_path, "bike", 6, gt)
    ope_record = run_sequence(lambda: ScriptedTracker(gt, set(), []), seq, "ope")
    assert ope_record.regions[0] == [4.5, 6.5, 20.0, 16.0]  # PySOT: centre x + w / 2
    assert ope_record.regions[1] == [5.0, 6.0, 20.0, 16.0]
    lt = run_sequence(lambda: ScriptedTracker(gt, set(), []), seq, "vot-lt")
    assert lt.regions[0] == [1] and lt.scores[0] is None and lt.scores[1] == pytest.approx(0.3)
    files = res.write_record(tmp_path / "r", get_benchmark("VOT2018-LT"), lt)
    assert [f.name for f in files] == ["bike_001.txt", "bike_001_confidence.value", "bike_time.txt"]
    assert files[1].read_text().splitlines()[:2] == ["", "0.300000"]
    regions, scores = res.read_vot_lt(tmp_path / "r", "bike", 6)
    assert regions.row(1) == [5.0, 6.0, 20.0, 16.0] and scores[1] == 0.3


def test_initial_box_of_a_polygon_is_pysots():
    # An axis-aligned square polygon keeps its size; a rotated one keeps its area.
    assert init_box(np.array([10, 10, 30, 10, 30, 20, 10, 20])) == (10.0, 10.0, 21.0, 11.0)
    diamond = np.array([20, 10, 30, 20, 20, 30, 10, 20], float)
    x, _, w, h = init_box(diamond)
    side = math.sqrt(200 / 400) * 20 + 1
    assert (w, h) == pytest.approx((side, side)) and x == pytest.approx(20 - (side - 1) / 2)


def test_vot_overlap_special_regions_and_rasterisation():
    assert math.isnan(vot_overlap([1], [0, 0, 5, 5]))
    assert vot_overlap([0, 0, 10, 10], [0, 0, 10, 10], (100, 100)) == 1.0
    # Both rectangles cover 11 x 11 pixels (corners rounded, ends inclusive), 6 x 6 shared.
    assert vot_overlap([0, 0, 10, 10], [5, 5, 10, 10]) == np.float32(36 / 206)
    # Clipped by the image: only the part inside counts.
    assert vot_overlap([-20, -20, 30, 30], [0, 0, 10, 10], (10, 10)) == 1.0
    a = Regions.from_rows([[1], [0, 0, 10, 10], [0, 0, 4, 0, 4, 4, 0, 4]])
    b = Regions.from_rows([[0, 0, 5, 5], [50, 50, 5, 5], [0, 0, 4, 4]])
    out = vot_overlaps(a, b, (100, 100))
    assert math.isnan(out[0]) and out[1] == 0.0 and out[2] == 1.0


def test_got10k_ao_and_success_rates(tmp_path):
    gt = np.array([[0, 0, 10, 10]] * 4, float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 10, 10]], float)
    visible = np.array([True, True, True, False])
    ious = ope.got10k_ious(gt, pred, size=(100, 100), visible=visible)
    assert ious.tolist() == pytest.approx([1.0, 50 / 150])  # first frame and hidden dropped
    scores = ope.got10k_scores(ious)
    assert (scores.ao, scores.sr50, scores.sr75) == pytest.approx((2 / 3, 0.5, 0.5))
    # The toolkit clips boxes to the image first.
    clipped = ope.clipped_iou(
        np.array([[90.0, 0, 20, 10]]), np.array([[90.0, 0, 10, 10]]), (100, 50)
    )
    assert clipped[0] == pytest.approx(1.0)


def _tiny_benchmark(tmp_path: Path, name: str) -> TrackingDataset:
    bench = get_benchmark(name)
    seqs = []
    for k, n in enumerate((12, 9)):
        gt = _boxes(n) + k
        if name == "VOT2018-LT":
            gt[4] = np.nan
        seq = _sequence(tmp_path / "data", f"s{k}", n, gt)
        tags = {"occlusion": np.array([i % 2 for i in range(n)])} if bench.protocol == "vot" else {}
        seqs.append(Sequence(seq.name, seq.frames, gt, ("IV",) if k else (), tags))
    return TrackingDataset(bench, tmp_path / "data", tuple(seqs))


@pytest.mark.parametrize("name", ["OTB100", "GOT-10k", "VOT2018", "VOT2018-LT"])
def test_run_score_report_and_plots(tmp_path, name):
    dataset = _tiny_benchmark(tmp_path, name)
    out = tmp_path / "results"
    for tracker_name, lost in (("good", set()), ("poor", {2, 5})):
        for seq in dataset.sequences:
            gt = np.nan_to_num(seq.gt, nan=1.0)
            protocol = dataset.benchmark.protocol
            record = run_sequence(
                lambda gt=gt, lost=lost: ScriptedTracker(gt, lost, []), seq, protocol
            )
            folder = res.tracker_dir(out, dataset.benchmark, tracker_name)
            res.write_record(folder, dataset.benchmark, record)
    report = score_trackers(dataset, out)
    good, poor = report["trackers"]["good"], report["trackers"]["poor"]
    key = {"ope": "success_auc", "vot": "eao", "vot-lt": "lt_f1"}[dataset.benchmark.protocol]
    if name == "VOT2018":
        assert good["failures"] == 0 and poor["failures"] == 2 and poor["robustness"] > 0
        assert good["accuracy"] == pytest.approx(1.0) and math.isnan(good["eao"])  # too short
        assert set(good["attributes"]) >= {"occlusion", "empty"}
    else:
        assert good[key] > poor[key]
    if name == "GOT-10k":
        assert good["ao"] == pytest.approx(1.0) and poor["ao"] < 1
    if name == "OTB100":
        assert good["attributes"]["IV"]["sequences"] == 1
    markdown = to_markdown(report)
    assert markdown.splitlines()[2].startswith("| tracker |") and "| good |" in markdown
    path = tmp_path / "report.json"
    merge_report(path, report)
    merged = merge_report(path, {**report, "benchmark": "Other"})
    assert set(merged) == {dataset.name, "Other"}
    stored = json.loads(path.read_text())[dataset.name]["trackers"]["good"][key]
    assert stored == good[key] or (stored is None and math.isnan(good[key]))  # NaN: null
    plots = write_plots(report, tmp_path / "plots")
    assert plots and all(np.asarray(Image.open(p)).shape[2] == 3 for p in plots)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InvalidArgumentError, match="not a tracking report"):
        merge_report(tmp_path / "bad.json", report)


def test_run_benchmark_in_this_process_writes_every_sequence(tmp_path):
    dataset = _tiny_benchmark(tmp_path, "LaSOT")

    class Matcher:
        def tracker(self):
            return ScriptedTracker(dataset.sequences[0].gt, set(), [])

    records = run_benchmark(
        dataset.select(["s0"]), tmp_path / "out", name="scripted",
        spec=TrackerSpec(None, None), matcher_obj=Matcher(), progress=False,
    )  # fmt: skip
    assert [r.name for r in records] == ["s0"]
    assert (tmp_path / "out" / "LaSOT" / "scripted" / "s0.txt").is_file()
