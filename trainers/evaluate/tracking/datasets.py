"""Tracking benchmarks, their sequences, and how a benchmark folder is read.

A benchmark name (:data:`BENCHMARKS`) picks a layout reader and a protocol:

======================  =========  ======================================================
name (aliases)          protocol   scores
======================  =========  ======================================================
OTB100 (OTB2015, OTB)   ope        success AUC, precision at 20 px, per attribute
UAV123                  ope        success AUC, precision, per attribute
LaSOT                   ope        success AUC, precision, normalised precision
GOT-10k (GOT10k)        ope        AO, SR0.5, SR0.75 (and success AUC, precision)
VOT2016 / 2017 / 2018   vot        accuracy, robustness, failures, EAO (per tag)
VOT2019                 vot        same, with VOT2019's EAO interval
VOT2018-LT (VOT-LT)     vot-lt     precision, recall and F-score over confidence
======================  =========  ======================================================

A folder is read in the benchmark's official layout (:mod:`.layouts`), or, when it holds
PySOT's dataset file ``<NAME>.json`` (``OTB100.json``, ``VOT2018.json`` ...), from that
file — the way PySOT's toolkit reads it. Sequences are kept sorted by name, the order
PySOT's toolkit iterates in (EAO and accuracy sum in that order).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matcher.errors import DatasetLayoutError, UnknownComponentError

logger = logging.getLogger(__name__)

#: VOT's per-frame attribute tags, in PySOT's order.
VOT_TAGS = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its canonical name, folder layout and protocol.

    Attributes:
        name: canonical name (the results sub-folder, as PySOT names it).
        layout: official layout read by :mod:`.layouts` (``otb``, ``uav123``, ``lasot``,
            ``got10k``, ``vot``, ``vot-lt``).
        protocol: ``ope`` (one pass), ``vot`` (supervised, re-initialised after failures)
            or ``vot-lt`` (long-term, with confidence).
        eao_interval: VOT's ``(low, high)`` sequence lengths averaged by EAO (1-based,
            inclusive), ``None`` for other protocols.
        aliases: other accepted spellings.
    """

    name: str
    layout: str
    protocol: str
    eao_interval: tuple[int, int] | None = None
    aliases: tuple[str, ...] = ()


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("OTB100", "otb", "ope", aliases=("OTB2015", "OTB")),
        Benchmark("UAV123", "uav123", "ope"),
        Benchmark("LaSOT", "lasot", "ope"),
        Benchmark("GOT-10k", "got10k", "ope", aliases=("GOT10k", "GOT-10k-val")),
        Benchmark("VOT2016", "vot", "vot", (108, 371)),
        Benchmark("VOT2017", "vot", "vot", (100, 356)),
        Benchmark("VOT2018", "vot", "vot", (100, 356)),
        Benchmark("VOT2019", "vot", "vot", (46, 291)),
        Benchmark("VOT2018-LT", "vot-lt", "vot-lt", aliases=("VOT-LT", "VOT2018LT")),
    )
}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (any case, or an alias).

    Raises:
        UnknownComponentError: no such benchmark; the message lists the names.
    """
    key = name.strip().lower()
    for bench in BENCHMARKS.values():
        if key in {bench.name.lower(), *(a.lower() for a in bench.aliases)}:
            return bench
    raise UnknownComponentError(
        f"unknown tracking benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}"
    )


@dataclass(frozen=True, eq=False)
class Sequence:
    """One annotated target through one video.

    Attributes:
        name: sequence name (result files are named after it).
        frames: image paths, one per frame.
        gt: ``(N, 4)`` float64 ``x, y, w, h`` boxes, or ``(N, 8)`` VOT polygons
            ``x1, y1, ..., x4, y4``; NaN rows where the target is absent (VOT-LT, UAV123).
        attributes: sequence-level attributes (OTB, UAV123; per-attribute scores).
        tags: VOT per-frame tags, name -> ``(N,)`` int64 0/1.
        visible: ``(N,)`` bool, the target is visible (LaSOT: neither fully occluded nor
            out of view; GOT-10k: cover > 0); ``None`` when the layout does not say.
        image_size: ``(width, height)`` when known; otherwise read from the first frame.
    """

    name: str
    frames: tuple[str, ...]
    gt: np.ndarray
    attributes: tuple[str, ...] = ()
    tags: Mapping[str, np.ndarray] = field(default_factory=dict)
    visible: np.ndarray | None = None
    image_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.gt)

    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames.

        Raises:
            DatasetLayoutError: the first frame cannot be read.
        """
        if self.image_size is not None:
            return self.image_size
        if not self.frames:
            raise DatasetLayoutError(f"sequence {self.name} has no frames")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.frames[0]) as image:
                return image.size
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetLayoutError(f"cannot read frame {self.frames[0]}: {exc}") from None


@dataclass(frozen=True, eq=False)
class TrackingDataset:
    """A benchmark's sequences as found in a folder.

    Attributes:
        benchmark: which benchmark (layout and protocol).
        root: the folder.
        sequences: sorted by name.
        source: ``"layout"`` or the PySOT JSON file read.
    """

    benchmark: Benchmark
    root: Path
    sequences: tuple[Sequence, ...]
    source: str = "layout"

    @property
    def name(self) -> str:
        return self.benchmark.name

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_frames(self) -> int:
        return sum(len(s) for s in self.sequences)

    def attributes(self) -> dict[str, list[str]]:
        """Attribute -> names of the sequences that have it (sequence-level attributes)."""
        out: dict[str, list[str]] = {}
        for seq in self.sequences:
            for attr in seq.attributes:
                out.setdefault(attr, []).append(seq.name)
        return dict(sorted(out.items()))

    def select(self, names: list[str]) -> TrackingDataset:
        """The dataset restricted to ``names`` (kept in sorted order).

        Raises:
            DatasetLayoutError: a name is not a sequence of the dataset.
        """
        known = {s.name for s in self.sequences}
        missing = [n for n in names if n not in known]
        if missing:
            raise DatasetLayoutError(
                f"{self.name} in {self.root} has no sequence {', '.join(missing)}"
            )
        keep = set(names)
        chosen = tuple(s for s in self.sequences if s.name in keep)
        return TrackingDataset(self.benchmark, self.root, chosen, self.source)


def load_dataset(name: str, root: str | Path) -> TrackingDataset:
    """Read benchmark ``name`` from ``root``.

    PySOT's ``<NAME>.json`` in ``root`` (for the canonical name or an alias) is read when
    present; otherwise the official layout.

    Raises:
        UnknownComponentError: unknown benchmark name.
        DatasetLayoutError: ``root`` is not a folder, or a file of the layout is missing
            or malformed (the message names it).
    """
    from trainers.evaluate.tracking import layouts

    bench = get_benchmark(name)
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DatasetLayoutError(f"dataset folder {folder} does not exist")
    for candidate in (bench.name, *bench.aliases):
        json_file = folder / f"{candidate}.json"
        if json_file.is_file():
            sequences = read_pysot_json(json_file, bench)
            return _dataset(bench, folder, sequences, str(json_file))
    sequences = layouts.READERS[bench.layout](folder)
    return _dataset(bench, folder, sequences, "layout")


def _dataset(
    bench: Benchmark, root: Path, sequences: list[Sequence], source: str
) -> TrackingDataset:
    if not sequences:
        raise DatasetLayoutError(f"{root} holds no {bench.name} sequence")
    names = [s.name for s in sequences]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DatasetLayoutError(f"{root}: sequence names repeat: {', '.join(dup)}")
    ordered = tuple(sorted(sequences, key=lambda s: s.name))
    return TrackingDataset(bench, root, ordered, source)


# -- PySOT's dataset JSON ------------------------------------------------------------------


def read_pysot_json(path: Path, bench: Benchmark) -> list[Sequence]:
    """Sequences from PySOT's dataset file (``{video: {video_dir, img_names, gt_rect,
    attr | tags | absent}}``); image names are relative to the file's folder.

    Raises:
        DatasetLayoutError: the file is not JSON of that shape (the message names it).
    """
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetLayoutError(f"cannot read {path}: {exc}") from None
    if not isinstance(meta, dict):
        raise DatasetLayoutError(f"{path}: expected an object of videos")
    root = path.parent
    out = []
    for name, video in meta.items():
        try:
            out.append(_json_sequence(str(name), video, root, bench))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetLayoutError(f"{path}: video {name!r} is malformed ({exc!r})") from None
    return out


def _json_sequence(name: str, video: dict[str, Any], root: Path, bench: Benchmark) -> Sequence:
    frames = tuple(str(root / p) for p in video["img_names"])
    rows = video["gt_rect"]
    width = max((len(r) for r in rows if isinstance(r, list | tuple)), default=4)
    gt = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        r = list(r) if isinstance(r, list | tuple) else [r]
        if len(r) == 4 and width == 8:  # a rectangle among polygons: same region
            r = rect_polygon(r)
        gt[i, : len(r)] = [float("nan") if v is None else float(v) for v in r]
    if len(frames) != len(gt):
        raise ValueError(f"{len(frames)} images but {len(gt)} boxes")
    tags: dict[str, np.ndarray] = {}
    if bench.protocol == "vot":
        for tag in VOT_TAGS:
            tags[tag] = _fit(np.asarray(video.get(tag) or [], np.int64), len(gt))
    visible = None
    if "absent" in video:  # PySOT's LaSOT flag: 1 where the target is visible
        visible = _fit(np.asarray(video["absent"], np.int64), len(gt)).astype(bool)
    attributes = tuple(str(a) for a in (video.get("attr") or ()))
    return Sequence(name, frames, gt, attributes, tags, visible)


def rect_polygon(rect: Any) -> list[float]:
    """A rectangle ``x, y, w, h`` as the VOT polygon of its corners ``x1, y1, ..., x4, y4``
    (the region VOT scores for it)."""
    x, y, w, h = (float(v) for v in rect)
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def _fit(values: np.ndarray, length: int) -> np.ndarray:
    """``values`` cut or zero-padded to ``length`` (VOT tag files omit trailing zeros)."""
    out = np.zeros(length, np.int64)
    n = min(length, len(values))
    out[:n] = values[:n]
    return out
