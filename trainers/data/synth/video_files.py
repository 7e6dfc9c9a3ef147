"""The per-process half of ``synth --video``: render one sequence and write its files in a
benchmark's layout (see :mod:`trainers.data.synth.video_layouts` for the layouts).

Like :mod:`trainers.data.synth.worker`, this module must stay importable without
``matcher`` (and hence without torch): worker processes are spawned and import only it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from trainers.data.synth.designs import ProductSpec
from trainers.data.synth.families import design_catalog
from trainers.data.synth.video import TAGS, VideoFrame, VideoSettings, render_video, sequence_rng

JPEG_QUALITY = 92
UAV123_ATTRIBUTES = ("SV", "ARC", "LR", "FM", "FOC", "POC", "OV", "BC", "IV", "VC", "CM", "SOB")


@dataclass(frozen=True)
class Layout:
    """Where a layout puts a sequence's frames, and whether targets may vanish."""

    name: str
    leave_frame: bool
    rotate: bool
    sequence: Callable[[int], str]
    frame: Callable[[str, int], str]


LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (
        Layout("otb", False, False, lambda i: f"Synth{i:02d}", lambda s, n: f"{s}/img/{n:04d}.jpg"),
        Layout(
            "uav123",
            True,
            False,
            lambda i: f"synth{i}",
            lambda s, n: f"data_seq/UAV123/{s}/{n:06d}.jpg",
        ),
        Layout(
            "lasot",
            True,
            False,
            lambda i: f"product-{i}",
            lambda s, n: f"product/{s}/img/{n:08d}.jpg",
        ),
        Layout(
            "got10k",
            True,
            False,
            lambda i: f"GOT-10k_Val_{i:06d}",
            lambda s, n: f"val/{s}/{n:08d}.jpg",
        ),
        Layout("vot", False, True, lambda i: f"product{i}", lambda s, n: f"{s}/{n:08d}.jpg"),
        Layout("vot-lt", True, False, lambda i: f"product{i}", lambda s, n: f"{s}/{n:08d}.jpg"),
    )
}


@dataclass(frozen=True)
class Job:
    """Everything a worker needs: output folder, layout, counts, frame size, seed."""

    root: str
    layout: str
    sequences: int
    frames: int
    size: tuple[int, int]
    seed: int


def write_sequence(task: tuple[Job, int]) -> str:
    """Render sequence ``index`` and write its frames and annotations."""
    job, index = task
    lay = LAYOUTS[job.layout]
    root = Path(job.root)
    name = lay.sequence(index)
    targets = 2 if job.layout == "otb" and index == 2 else 1
    specs = _catalog(2 * job.sequences + 2, job.seed)
    chosen = [specs[(2 * index + k) % len(specs)] for k in range(targets + 1)]
    settings = VideoSettings(job.frames, job.size, targets, lay.leave_frame, lay.rotate)
    frames: list[VideoFrame] = []
    for number, frame in enumerate(
        render_video(chosen, settings, sequence_rng(job.seed, index)), 1
    ):
        path = root / lay.frame(name, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = np.ascontiguousarray(frame.image[:, :, ::-1])
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"cannot write {path}")
        frames.append(VideoFrame(np.zeros((0, 0, 3), np.uint8), frame.targets, frame.tags))
    folder = (root / lay.frame(name, 1)).parent
    if folder.name == "img":
        folder = folder.parent
    WRITERS[job.layout](folder, frames, job)
    return name


@lru_cache(maxsize=1)
def _catalog(count: int, seed: int) -> tuple[ProductSpec, ...]:
    """The dataset's product designs, made once per process (every sequence draws from
    them)."""
    return tuple(design_catalog(count, seed=seed))


# -- per-layout annotation files -----------------------------------------------------------


def _lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def _boxes(frames: list[VideoFrame], k: int = 0) -> list[tuple[float, float, float, float] | None]:
    return [f.targets[k].box for f in frames]


def _held(boxes: list[tuple[float, float, float, float] | None]) -> list[tuple[float, ...]]:
    """Boxes with gaps (target outside the image) filled by the last box seen."""
    out, last = [], next((b for b in boxes if b is not None), (0.0, 0.0, 1.0, 1.0))
    for box in boxes:
        last = box if box is not None else last
        out.append(last)
    return out


def _ints(box: tuple[float, ...]) -> str:
    return ",".join(str(round(v)) for v in box)


def _write_otb(folder: Path, frames: list[VideoFrame], job: Job) -> None:
    targets = len(frames[0].targets)
    for k in range(targets):
        name = "groundtruth_rect.txt" if targets == 1 else f"groundtruth_rect.{k + 1}.txt"
        _lines(folder / name, [_ints(b) for b in _held(_boxes(frames, k))])


def _write_uav123(folder: Path, frames: list[VideoFrame], job: Job) -> None:
    root = Path(job.root)
    anno = root / "anno" / "UAV123"
    (anno / "att").mkdir(parents=True, exist_ok=True)
    rows = []
    for f in frames:
        t = f.targets[0]
        rows.append("NaN,NaN,NaN,NaN" if t.visible <= 0 or t.box is None else _ints(t.box))
    _lines(anno / f"{folder.name}.txt", rows)
    _lines(anno / "att" / f"{folder.name}.txt", [",".join(map(str, _uav_attributes(frames)))])


def _uav_attributes(frames: list[VideoFrame]) -> list[int]:
    boxes = [b for b in _boxes(frames) if b is not None]
    areas = [b[2] * b[3] for b in boxes] or [1.0]
    ratios = [b[2] / b[3] for b in boxes if b[3] > 0] or [1.0]
    centres = np.array([(b[0] + b[2] / 2, b[1] + b[3] / 2) for b in boxes] or [(0, 0)])
    speed = np.linalg.norm(np.diff(centres, axis=0), axis=1).max(initial=0.0)
    vis = [(t.inside, t.visible) for t in (f.targets[0] for f in frames)]
    tags = set().union(*(f.tags for f in frames))
    flags = {
        "SV": max(areas) / max(min(areas), 1.0) > 2,
        "ARC": max(ratios) / min(ratios) > 2,
        "LR": min(areas) < 400,
        "FM": speed > 20,
        "FOC": any(i > 0 and v == 0 for i, v in vis),
        "POC": any(0 < v < 0.95 * i for i, v in vis),
        "OV": any(i == 0 for i, _ in vis),
        "BC": False,
        "IV": "illum_change" in tags,
        "VC": False,
        "CM": "camera_motion" in tags,
        "SOB": True,
    }
    return [int(flags[a]) for a in UAV123_ATTRIBUTES]


def _write_lasot(folder: Path, frames: list[VideoFrame], job: Job) -> None:
    t = [f.targets[0] for f in frames]
    out_of_view = [int(x.inside <= 0) for x in t]
    full_occlusion = [int(x.inside > 0 and x.visible <= 0) for x in t]
    rows = ["0,0,0,0" if x.box is None else _ints(x.box) for x in t]
    _lines(folder / "groundtruth.txt", rows)
    _lines(folder / "full_occlusion.txt", [",".join(map(str, full_occlusion))])
    _lines(folder / "out_of_view.txt", [",".join(map(str, out_of_view))])
    _lines(folder / "nlp.txt", ["a product moving on a table"])


def _write_got10k(folder: Path, frames: list[VideoFrame], job: Job) -> None:
    t = [f.targets[0] for f in frames]
    boxes = _held([x.box for x in t])
    _lines(folder / "groundtruth.txt", [",".join(f"{v:.4f}" for v in b) for b in boxes])
    _lines(folder / "absence.label", [str(int(x.visible <= 0)) for x in t])
    _lines(folder / "cover.label", [str(min(8, math.ceil(max(x.visible, 0.0) * 8))) for x in t])
    _lines(folder / "cut_by_image.label", [str(int(0 < x.inside < 0.999)) for x in t])
    h, w = job.size
    meta = [
        "[METAINFO]",
        "url: synthetic",
        "begin: 00:00:00",
        "end: 00:00:00",
        "anno_fps: 10Hz",
        "object_class: product",
        "motion_class: sliding",
        "major_class: product",
        "root_class: object",
        "motion_adverb: slowly",
        f"resolution: ({w}, {h})",
    ]
    _lines(folder / "meta_info.ini", meta)


def _write_vot(folder: Path, frames: list[VideoFrame], job: Job) -> None:
    rows = [",".join(f"{v:.2f}" for v in f.targets[0].quad.reshape(-1)) for f in frames]
    _lines(folder / "groundtruth.txt", rows)
    for tag in TAGS:
        _lines(folder / f"{tag}.tag", [str(int(tag in f.tags)) for f in frames])


def _write_vot_lt(folder: Path, frames: list[VideoFrame], job: Job) -> None:
    rows = []
    for f in frames:
        t = f.targets[0]
        visible = t.visible > 0 and t.box is not None
        rows.append(",".join(f"{v:.2f}" for v in t.box) if visible else "nan,nan,nan,nan")
    _lines(folder / "groundtruth.txt", rows)


WRITERS: dict[str, Callable[[Path, list[VideoFrame], Job], None]] = {
    "otb": _write_otb,
    "uav123": _write_uav123,
    "lasot": _write_lasot,
    "got10k": _write_got10k,
    "vot": _write_vot,
    "vot-lt": _write_vot_lt,
}


def write_index(job: Job) -> None:
    """The layout's sequence lists."""
    lay = LAYOUTS[job.layout]
    root = Path(job.root)
    names = [lay.sequence(i) for i in range(1, job.sequences + 1)]
    if job.layout in ("vot", "vot-lt"):
        _lines(root / "list.txt", names)
    elif job.layout == "got10k":
        _lines(root / "val" / "list.txt", names)
    elif job.layout == "lasot":
        _lines(root / "testing_set.txt", names)
