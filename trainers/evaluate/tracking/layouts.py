"""Readers of the tracking benchmarks' official folder layouts.

``N`` is a frame number from 1; every reader returns :class:`~.datasets.Sequence` objects
and raises :class:`~matcher.errors.DatasetLayoutError` naming the file at fault.

* **OTB** (OTB2015/OTB100): ``root/<Name>/img/{N:04d}.jpg`` and
  ``root/<Name>/groundtruth_rect.txt`` (``x,y,w,h``; commas, tabs or spaces). A sequence
  with several targets has ``groundtruth_rect.<k>.txt`` files: each non-empty one is a
  sequence ``<Name>-<k>`` (Jogging-1, Jogging-2, Skating2-1, Skating2-2, Human4-2). Five
  sequences use a range of their images: David 300-770, Football1 1-74, Freeman3 1-460,
  Freeman4 1-283, Diving 1-215.
* **UAV123**: ``root/anno/UAV123/<seq>.txt`` (``x,y,w,h``, ``NaN`` where the target is
  absent), ``root/anno/UAV123/att/<seq>.txt`` (twelve 0/1 attributes, optional) and
  ``root/data_seq/UAV123/<folder>/{N:06d}.jpg``. Sub-sequences ``<folder>_<i>`` share
  their folder and start at the frame :data:`UAV123_STARTS` gives (1 otherwise).
* **LaSOT**: ``root/<class>/<class>-<i>/img/{N:08d}.jpg``, ``groundtruth.txt``,
  ``full_occlusion.txt`` and ``out_of_view.txt`` (comma-separated 0/1, optional); the
  test split is ``root/testing_set.txt`` (one sequence per line) when present, else every
  sequence found. A frame counts as visible when neither flag is set.
* **GOT-10k** (val): ``root/val/list.txt`` (or ``root/list.txt``),
  ``<seq>/{N:08d}.jpg``, ``groundtruth.txt``, ``absence.label``, ``cover.label``
  (0 = fully covered; a frame with cover > 0 is scored), ``cut_by_image.label`` and
  ``meta_info.ini`` (``resolution: (W, H)``).
* **VOT** (2016-2019) and **VOT-LT**: ``root/list.txt``, ``<seq>/groundtruth.txt`` (8-number
  polygons or ``x,y,w,h``; ``nan`` rows where a long-term target is absent), frames
  ``<seq>/{N:08d}.jpg`` or ``<seq>/color/{N:08d}.jpg``, per-frame tag files
  ``<tag>.tag`` or ``<tag>.label`` (one 0/1 a line; missing or short files mean 0).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from matcher.errors import DatasetLayoutError
from trainers.evaluate.tracking.datasets import VOT_TAGS, Sequence, _fit, rect_polygon

logger = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[,\s]+")

#: OTB sequences scored on part of their images: 1-based first and last image.
OTB_RANGES: dict[str, tuple[int, int]] = {
    "David": (300, 770),
    "Football1": (1, 74),
    "Freeman3": (1, 460),
    "Freeman4": (1, 283),
    "Diving": (1, 215),
}

#: UAV123 sub-sequences that do not start at their folder's first frame.
UAV123_STARTS: dict[str, int] = {
    "bird1_2": 775, "bird1_3": 1573,
    "car1_2": 751, "car1_3": 1627,
    "car6_2": 487, "car6_3": 1807, "car6_4": 2953, "car6_5": 3925,
    "car8_2": 1357,
    "car16_2": 415,
    "group1_2": 1333, "group1_3": 2515, "group1_4": 3925,
    "group2_2": 907, "group2_3": 1771,
    "group3_2": 1567, "group3_3": 2827, "group3_4": 4369,
    "person2_2": 1189,
    "person4_2": 1501,
    "person5_2": 877,
    "person7_2": 1249,
    "person8_2": 1075,
    "person12_2": 601,
    "person14_2": 847, "person14_3": 1813,
    "person17_2": 1501,
    "person19_2": 1243, "person19_3": 2791,
    "truck4_2": 577,
    "uav1_2": 1555, "uav1_3": 2473,
}  # fmt: skip

#: UAV123's attribute columns, in the order of its ``att`` files.
UAV123_ATTRIBUTES = (
    "Scale Variation",
    "Aspect Ratio Change",
    "Low Resolution",
    "Fast Motion",
    "Full Occlusion",
    "Partial Occlusion",
    "Out-of-View",
    "Background Clutter",
    "Illumination Variation",
    "Viewpoint Change",
    "Camera Motion",
    "Similar Object",
)


# -- helpers -----------------------------------------------------------------------------


def read_numbers(path: Path, *, columns: tuple[int, ...] | None = None) -> np.ndarray:
    """A text file of numbers, one row a line (``,``, tab or space separated).

    Args:
        path: the file.
        columns: accepted row lengths (all rows must have the same); ``None``: any.

    Returns:
        ``(rows, columns)`` float64 (``nan`` and ``NaN`` read as NaN).

    Raises:
        DatasetLayoutError: missing, unreadable, ragged or not numbers.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise DatasetLayoutError(f"missing file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetLayoutError(f"cannot read {path}: {exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in _SEPARATORS.split(line) if v])
        except ValueError:
            raise DatasetLayoutError(f"{path}, line {number}: not numbers: {line[:60]!r}") from None
    if not rows:
        return np.zeros((0, columns[0] if columns else 0))
    widths = {len(r) for r in rows}
    if len(widths) != 1 or (columns is not None and widths.pop() not in columns):
        expected = " or ".join(map(str, columns)) if columns else "the same number of"
        raise DatasetLayoutError(f"{path}: expected {expected} values on every line")
    return np.asarray(rows, np.float64)


def read_flags(path: Path, length: int) -> np.ndarray:
    """0/1 (or small integer) labels, one per line or comma-separated; zero-padded."""
    values = read_numbers(path)
    return _fit(values.reshape(-1).astype(np.int64), length)


def _boxes(path: Path) -> np.ndarray:
    gt = read_numbers(path, columns=(4,))
    if len(gt) == 0:
        raise DatasetLayoutError(f"{path} holds no box")
    return gt


def _frames(folder: Path, pattern: str, first: int, count: int) -> tuple[str, ...]:
    """Frame paths ``folder/pattern.format(first .. first + count - 1)``; the first and
    last must exist."""
    frames = tuple(str(folder / pattern.format(n)) for n in range(first, first + count))
    for path in (frames[0], frames[-1]) if frames else ():
        if not Path(path).is_file():
            raise DatasetLayoutError(f"missing frame {path}")
    return frames


def _list_file(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise DatasetLayoutError(f"cannot read {path}: {exc}") from None


# -- readers -------------------------------------------------------------------------------


def read_otb(root: Path) -> list[Sequence]:
    """OTB2015 / OTB100 layout (see the module docstring)."""
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        gt_files = sorted(folder.glob("groundtruth_rect*.txt"))
        if not gt_files:
            continue
        images = sorted(p for p in (folder / "img").glob("*") if p.suffix.lower() == ".jpg")
        if not images:
            raise DatasetLayoutError(f"{folder / 'img'} holds no .jpg frame")
        first, last = OTB_RANGES.get(folder.name, (1, len(images)))
        images = images[first - 1 : last]
        for gt_file in gt_files:
            if not gt_file.read_text(errors="replace").strip():
                logger.info("skipping empty %s", gt_file)
                continue
            suffix = re.fullmatch(r"groundtruth_rect\.(\d+)\.txt", gt_file.name)
            name = f"{folder.name}-{suffix.group(1)}" if suffix else folder.name
            gt = _boxes(gt_file)
            if len(gt) != len(images):
                raise DatasetLayoutError(
                    f"{gt_file}: {len(gt)} boxes for {len(images)} frames of {folder / 'img'}"
                )
            out.append(Sequence(name, tuple(map(str, images)), gt))
    return out


def read_uav123(root: Path) -> list[Sequence]:
    """UAV123 layout (see the module docstring)."""
    anno = root / "anno" / "UAV123"
    if not anno.is_dir():
        raise DatasetLayoutError(f"missing folder {anno}")
    data = root / "data_seq" / "UAV123"
    out = []
    for gt_file in sorted(anno.glob("*.txt")):
        name = gt_file.stem
        folder = data / name
        split = re.fullmatch(r"(.+)_\d+", name)
        if not folder.is_dir() and split is not None:
            folder = data / split.group(1)
        gt = _boxes(gt_file)
        frames = _frames(folder, "{:06d}.jpg", UAV123_STARTS.get(name, 1), len(gt))
        attributes: tuple[str, ...] = ()
        att_file = anno / "att" / f"{name}.txt"
        if att_file.is_file():
            flags = read_numbers(att_file).reshape(-1)
            if len(flags) != len(UAV123_ATTRIBUTES):
                raise DatasetLayoutError(
                    f"{att_file}: expected {len(UAV123_ATTRIBUTES)} attribute flags"
                )
            attributes = tuple(a for a, f in zip(UAV123_ATTRIBUTES, flags, strict=True) if f)
        out.append(Sequence(name, frames, gt, attributes))
    return out


def read_lasot(root: Path) -> list[Sequence]:
    """LaSOT layout, test split when ``testing_set.txt`` is present."""
    split_file = root / "testing_set.txt"
    if split_file.is_file():
        names = _list_file(split_file)
        folders = [root / n.rsplit("-", 1)[0] / n for n in names]
    else:
        folders = sorted(p.parent for p in root.glob("*/*/groundtruth.txt"))
        logger.info("%s has no testing_set.txt: scoring all %d sequences", root, len(folders))
    out = []
    for folder in folders:
        gt = _boxes(folder / "groundtruth.txt")
        n = len(gt)
        visible = np.ones(n, bool)
        for flag_name in ("full_occlusion.txt", "out_of_view.txt"):
            flag_file = folder / flag_name
            if flag_file.is_file():
                visible &= read_flags(flag_file, n) == 0
        frames = _frames(folder / "img", "{:08d}.jpg", 1, n)
        out.append(Sequence(folder.name, frames, gt, visible=visible))
    return out


def read_got10k(root: Path) -> list[Sequence]:
    """GOT-10k validation layout."""
    split = root / "val" if (root / "val" / "list.txt").is_file() else root
    list_file = split / "list.txt"
    if not list_file.is_file():
        raise DatasetLayoutError(f"missing file {list_file} (or {root / 'val' / 'list.txt'})")
    out = []
    for name in _list_file(list_file):
        folder = split / name
        gt = _boxes(folder / "groundtruth.txt")
        n = len(gt)
        visible = None
        if (folder / "cover.label").is_file():
            visible = read_flags(folder / "cover.label", n) > 0
        elif (folder / "absence.label").is_file():
            visible = read_flags(folder / "absence.label", n) == 0
        size = _got10k_resolution(folder / "meta_info.ini")
        frames = _frames(folder, "{:08d}.jpg", 1, n)
        out.append(Sequence(name, frames, gt, visible=visible, image_size=size))
    return out


def _got10k_resolution(path: Path) -> tuple[int, int] | None:
    if not path.is_file():
        return None
    match = re.search(
        r"resolution:\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", path.read_text(errors="replace")
    )
    return (int(match.group(1)), int(match.group(2))) if match else None


def read_vot(root: Path, *, long_term: bool = False) -> list[Sequence]:
    """VOT short-term (``long_term=False``) or VOT-LT layout."""
    list_file = root / "list.txt"
    if not list_file.is_file():
        raise DatasetLayoutError(f"missing file {list_file}")
    out = []
    for name in _list_file(list_file):
        folder = root / name
        gt = _vot_regions(folder / "groundtruth.txt", long_term=long_term)
        n = len(gt)
        images = folder / "color" if (folder / "color").is_dir() else folder
        frames = _frames(images, "{:08d}.jpg", 1, n)
        tags = {}
        if not long_term:
            for tag in VOT_TAGS:
                path = next(
                    (folder / f"{tag}{ext}" for ext in (".tag", ".label")
                     if (folder / f"{tag}{ext}").is_file()),
                    None,
                )  # fmt: skip
                tags[tag] = read_flags(path, n) if path else np.zeros(n, np.int64)
        out.append(Sequence(name, frames, gt, tags=tags))
    return out


def _vot_regions(path: Path, *, long_term: bool) -> np.ndarray:
    """VOT ground truth: ``(N, 4)`` boxes, or ``(N, 8)`` polygons where a file mixes
    polygons and boxes (a box becomes its four corners, the region VOT scores)."""
    try:
        return read_numbers(path, columns=(4,) if long_term else (4, 8))
    except DatasetLayoutError:
        if long_term or not path.is_file():
            raise
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        try:
            values = [float(v) for v in _SEPARATORS.split(line.strip()) if v]
        except ValueError:
            raise DatasetLayoutError(f"{path}, line {number}: not numbers") from None
        if len(values) == 4:
            values = rect_polygon(values)
        if values and len(values) != 8:
            raise DatasetLayoutError(f"{path}: expected 4 or 8 values on every line")
        if values:
            rows.append(values)
    return np.asarray(rows, np.float64)


READERS: dict[str, Callable[[Path], list[Sequence]]] = {
    "otb": read_otb,
    "uav123": read_uav123,
    "lasot": read_lasot,
    "got10k": read_got10k,
    "vot": read_vot,
    "vot-lt": lambda root: read_vot(root, long_term=True),
}
