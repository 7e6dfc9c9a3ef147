"""Pairs from video datasets: GOT-10k, LaSOT and ImageNet-VID layouts.

A positive pair is two frames of one track at most ``max_gap`` frames apart (the same
frame may be drawn twice, as in PySOT); a track is drawn uniformly, then a frame, then
the second frame uniformly among the track's usable frames within the gap. Frames where
the object is absent, fully occluded, out of view, or has a missing or degenerate box
(a side under :data:`~trainers.data.sources.MIN_SIDE`) are never used. Identities are
tracks; groups are object classes where the layout names them (GOT-10k
``meta_info.ini`` ``object_class``, the LaSOT class folder, the VID synset).

Layouts (``N`` the frame number):

* GOT-10k: ``root/<split>/list.txt`` (optional; else every folder with a
  ``groundtruth.txt``), ``root/<split>/<seq>/{N:08d}.jpg`` from 1, ``groundtruth.txt``
  with ``x,y,w,h`` per line, ``absence.label`` (1 = absent) and ``cover.label``
  (0 = fully covered) one value per line, both optional.
* LaSOT: ``root/<class>/<class>-<n>/img/{N:08d}.jpg`` from 1, ``groundtruth.txt``
  ``x,y,w,h`` per line, ``full_occlusion.txt`` and ``out_of_view.txt`` comma-separated
  0/1 (optional).
* ImageNet-VID: ``root/Data/VID/<split>/<...>/<snippet>/{N:06d}.JPEG`` from 0 and
  ``root/Annotations/VID/<split>/<...>/<snippet>/{N:06d}.xml`` (PASCAL VOC: ``object`` /
  ``trackid``, ``name``, ``bndbox`` ``xmin ymin xmax ymax``). Occluded objects
  (``occluded = 1``) are partly visible and are kept.

Annotation files are read once when the source is built; frames are read per item.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matcher.errors import ConfigError
from trainers.data.sources import MIN_SIDE, PairSource, View, draw_excluding

logger = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[,\s]+")
_CHECKED_FILES = 3


@dataclass(frozen=True, eq=False)
class Track:
    """One object through one sequence.

    Attributes:
        frame_pattern: frame path with a ``{}`` field for the frame number.
        frames: ``(N,)`` int64 usable frame numbers, increasing.
        boxes: ``(N, 4)`` float32, ``(x0, y0, x1, y1)`` pixels in those frames.
        group: object class, or ``None``.
    """

    frame_pattern: str
    frames: np.ndarray
    boxes: np.ndarray
    group: Hashable | None = None


class VideoSource(PairSource):
    """Pairs of frames from video tracks.

    Args:
        tracks: the usable tracks (each with at least one usable frame).
        max_gap: the two frames of a positive are at most this many frames apart.
        index: the source's index (first element of its identities).
        name: for errors and logs.

    Raises:
        ConfigError: no track, or a negative ``max_gap``.
    """

    def __init__(self, tracks: list[Track], *, max_gap: int, index: int, name: str) -> None:
        if not tracks:
            raise ConfigError(f"{name}: no usable track (every frame absent or degenerate?)")
        if max_gap < 0:
            raise ConfigError(f"{name}: max_gap must be >= 0, got {max_gap}")
        self.name = name
        self.index = index
        self.max_gap = int(max_gap)
        self._tracks = tracks
        self.num_identities = len(tracks)
        self._ids = np.arange(len(tracks))
        codes: dict[Hashable, int] = {}
        self._groups = [
            None if t.group is None else codes.setdefault(t.group, len(codes)) for t in tracks
        ]
        members: dict[int, list[int]] = {}
        for k, g in enumerate(self._groups):
            if g is not None:
                members.setdefault(g, []).append(k)
        self._group_members = {g: np.asarray(m) for g, m in members.items()}
        for track in tracks[:_CHECKED_FILES]:
            path = track.frame_pattern.format(int(track.frames[0]))
            if not os.path.isfile(path):
                raise ConfigError(f"{name}: frame {path} does not exist")
        logger.info(
            "%s: %d tracks, %d usable frames, %d classes",
            name,
            len(tracks),
            sum(len(t.frames) for t in tracks),
            len(codes),
        )

    def __len__(self) -> int:
        """Number of tracks."""
        return len(self._tracks)

    def view(self, track: int, k: int) -> View:
        """The view of usable frame ``k`` of track ``track``."""
        t = self._tracks[track]
        return View(
            image=t.frame_pattern.format(int(t.frames[k])),
            box=tuple(float(v) for v in t.boxes[k]),
            identity=(self.index, track),
            group=self._groups[track],
        )

    def _frame(self, rng: np.random.Generator, track: int) -> View:
        return self.view(track, int(rng.integers(len(self._tracks[track].frames))))

    def positive(self, rng: np.random.Generator) -> tuple[View, View]:
        track = int(rng.integers(len(self._tracks)))
        frames = self._tracks[track].frames
        a = int(rng.integers(len(frames)))
        lo = int(np.searchsorted(frames, frames[a] - self.max_gap, side="left"))
        hi = int(np.searchsorted(frames, frames[a] + self.max_gap, side="right"))
        b = int(rng.integers(lo, hi))
        return self.view(track, a), self.view(track, b)

    def reference(self, rng: np.random.Generator) -> View:
        return self._frame(rng, int(rng.integers(len(self._tracks))))

    def search(self, rng: np.random.Generator, *, exclude: tuple[Hashable, ...] | None) -> View:
        key = exclude[1] if exclude is not None and exclude[0] == self.index else None
        return self._frame(rng, draw_excluding(rng, self._ids, key))

    def distractor(self, rng: np.random.Generator, reference: View) -> View | None:
        if reference.group is None or reference.identity[0] != self.index:
            return None
        members = self._group_members.get(int(reference.group))
        if members is None:
            return None
        try:
            k = draw_excluding(rng, members, reference.identity[1])
        except LookupError:
            return None
        return self._frame(rng, int(members[k]))


# -- annotation files -----------------------------------------------------------------


def read_boxes(path: Path, *, name: str) -> np.ndarray:
    """``x,y,w,h`` per line (commas, tabs or spaces; ``nan`` allowed) -> ``(N, 4)`` float64.

    Raises:
        ConfigError: missing file, or a line that is not four numbers.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc}") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = _SEPARATORS.split(line.strip())
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ConfigError(f"{name}: {path}:{number} is not 'x,y,w,h': {line.strip()!r:.60}")
        rows.append(values)
    return np.asarray(rows, np.float64).reshape(-1, 4)


def read_flags(path: Path, count: int, *, name: str) -> np.ndarray:
    """0/1 (or small integer) labels, one per frame, comma/space/line separated.

    A missing file means all zeros.

    Returns:
        ``(count,)`` int64.

    Raises:
        ConfigError: unreadable, non-integer values, or not ``count`` of them.
    """
    if not path.exists():
        return np.zeros(count, np.int64)
    try:
        tokens = [t for t in _SEPARATORS.split(path.read_text(encoding="utf-8")) if t]
        values = np.asarray([int(float(t)) for t in tokens], np.int64)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{name}: corrupt label file {path}: {exc}") from exc
    if len(values) != count:
        raise ConfigError(f"{name}: {path} has {len(values)} labels for {count} boxes")
    return values


def make_track(
    pattern: str,
    frames: np.ndarray,
    xywh: np.ndarray,
    *,
    unusable: np.ndarray | None = None,
    group: Hashable | None = None,
    min_side: float = MIN_SIDE,
) -> Track | None:
    """A :class:`Track` of the usable frames, or ``None`` if there is none.

    Args:
        pattern: frame path pattern.
        frames: ``(N,)`` frame numbers.
        xywh: ``(N, 4)`` boxes as ``x, y, w, h``.
        unusable: ``(N,)`` bool, frames marked absent / occluded / out of view.
        group: object class.
        min_side: smaller boxes are unusable.
    """
    w, h = xywh[:, 2], xywh[:, 3]
    ok = np.isfinite(xywh).all(axis=1) & (w >= min_side) & (h >= min_side)
    if unusable is not None:
        ok &= ~unusable
    if not ok.any():
        return None
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)[ok]
    order = np.argsort(frames[ok], kind="stable")
    return Track(
        pattern, frames[ok][order].astype(np.int64), boxes[order].astype(np.float32), group
    )


def _object_class(meta: Path) -> str | None:
    try:
        for line in meta.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "object_class" and value.strip():
                return value.strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None


def load_got10k(root: Path, split: str, *, name: str, min_side: float = MIN_SIDE) -> list[Track]:
    """The tracks of a GOT-10k split (one object per sequence).

    Raises:
        ConfigError: the split folder, a listed sequence or its ``groundtruth.txt`` is
            missing, or an annotation file is corrupt.
    """
    base = root / split
    if not base.is_dir():
        raise ConfigError(f"{name}: GOT-10k split folder {base} does not exist")
    listing = base / "list.txt"
    if listing.is_file():
        names = [n.strip() for n in listing.read_text(encoding="utf-8").splitlines() if n.strip()]
    else:
        names = sorted(p.name for p in base.iterdir() if (p / "groundtruth.txt").is_file())
    tracks = []
    for seq in names:
        folder = base / seq
        gt = folder / "groundtruth.txt"
        if not gt.is_file():
            raise ConfigError(f"{name}: sequence {folder} has no groundtruth.txt")
        xywh = read_boxes(gt, name=name)
        absent = read_flags(folder / "absence.label", len(xywh), name=name) != 0
        if (folder / "cover.label").exists():
            absent |= read_flags(folder / "cover.label", len(xywh), name=name) == 0
        track = make_track(
            str(folder / "{:08d}.jpg"),
            np.arange(1, len(xywh) + 1),
            xywh,
            unusable=absent,
            group=_object_class(folder / "meta_info.ini"),
            min_side=min_side,
        )
        if track is not None:
            tracks.append(track)
    return tracks


def load_lasot(root: Path, *, name: str, min_side: float = MIN_SIDE) -> list[Track]:
    """The tracks of a LaSOT folder (one object per sequence; group = the class folder).

    Raises:
        ConfigError: ``root`` is missing or an annotation file is corrupt.
    """
    if not root.is_dir():
        raise ConfigError(f"{name}: LaSOT folder {root} does not exist")
    tracks = []
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        for folder in sorted(p for p in cls.iterdir() if (p / "groundtruth.txt").is_file()):
            xywh = read_boxes(folder / "groundtruth.txt", name=name)
            hidden = read_flags(folder / "full_occlusion.txt", len(xywh), name=name) != 0
            hidden |= read_flags(folder / "out_of_view.txt", len(xywh), name=name) != 0
            track = make_track(
                str(folder / "img" / "{:08d}.jpg"),
                np.arange(1, len(xywh) + 1),
                xywh,
                unusable=hidden,
                group=cls.name,
                min_side=min_side,
            )
            if track is not None:
                tracks.append(track)
    return tracks


def _vid_objects(path: Path, *, name: str) -> list[tuple[int, str, list[float]]]:
    """``(trackid, class, [xmin, ymin, xmax, ymax])`` of each object of one VID XML file."""
    try:
        tree = ET.parse(path)
        out = []
        for obj in tree.getroot().iter("object"):
            bb = obj.find("bndbox")
            coords = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            out.append((int(obj.findtext("trackid")), obj.findtext("name") or "", coords))
    except (ET.ParseError, OSError, AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: corrupt ImageNet-VID annotation {path}: {exc}") from exc
    return out


def load_vid(root: Path, split: str, *, name: str, min_side: float = MIN_SIDE) -> list[Track]:
    """The tracks of an ImageNet-VID split (every ``trackid`` of every snippet).

    Raises:
        ConfigError: the annotation or data folder is missing, or an XML file is corrupt.
    """
    ann_root = root / "Annotations" / "VID" / split
    data_root = root / "Data" / "VID" / split
    for folder in (ann_root, data_root):
        if not folder.is_dir():
            raise ConfigError(f"{name}: ImageNet-VID folder {folder} does not exist")
    tracks = []
    for dirpath, dirnames, filenames in os.walk(ann_root):
        dirnames.sort()
        xmls = sorted(f for f in filenames if f.endswith(".xml"))
        if not xmls:
            continue
        rel = Path(dirpath).relative_to(ann_root)
        digits = len(Path(xmls[0]).stem)
        pattern = str(data_root / rel / f"{{:0{digits}d}}.JPEG")
        per_track: dict[int, tuple[str, list[int], list[list[float]]]] = {}
        for file in xmls:
            try:
                frame = int(Path(file).stem)
            except ValueError as exc:
                raise ConfigError(f"{name}: unexpected VID file name {dirpath}/{file}") from exc
            for trackid, cls, (x0, y0, x1, y1) in _vid_objects(Path(dirpath) / file, name=name):
                entry = per_track.setdefault(trackid, (cls, [], []))
                entry[1].append(frame)
                entry[2].append([x0, y0, x1 - x0, y1 - y0])
        for _, (cls, frames, xywh) in sorted(per_track.items()):
            track = make_track(
                pattern,
                np.asarray(frames, np.int64),
                np.asarray(xywh, np.float64),
                group=cls or None,
                min_side=min_side,
            )
            if track is not None:
                tracks.append(track)
    return tracks
