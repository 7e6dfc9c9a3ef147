"""Tracker result files in PySOT's layout (so results made by PySOT, the VOT toolkit or the
GOT-10k toolkit are scored next to ours).

Under ``RESULTS/<benchmark>/<tracker>/``:

* OTB, UAV123, LaSOT: ``<seq>.txt``, one ``x,y,w,h`` a frame (PySOT's older OTB names
  ``jogging_1.txt``, ``fleetface.txt`` ... are read too);
* GOT-10k: ``<seq>/<seq>_001.txt`` (further repetitions ``_002`` ...) and
  ``<seq>/<seq>_time.txt``, as the GOT-10k toolkit writes them (``<seq>.txt`` is read
  too);
* VOT: ``baseline/<seq>/<seq>_001.txt``: ``1`` where the tracker was initialised, ``2``
  where it failed, ``0`` for the frames skipped after a failure, else the region (``x,y,w,h``
  or a polygon) with 4 decimals; 15 files ``_001 .. _015`` are the 15 runs of a stochastic
  tracker (otherwise only the first file counts, as in PySOT);
* VOT-LT: ``longterm/<seq>/<seq>_001.txt`` (``1`` then one box a frame),
  ``<seq>_001_confidence.value`` (an empty first line, then one score a frame) and
  ``<seq>_time.txt``.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matcher.errors import TrackingResultsError
from trainers.evaluate.tracking.datasets import Benchmark
from trainers.evaluate.tracking.region import Regions

_SEPARATORS = re.compile(r"[,\s]+")
_COMMAS = re.compile(r",")

#: PySOT's fallback names of OTB result files (older result sets use them).
_OTB_OLD_NAMES = {
    "FleetFace": "fleetface",
    "Jogging-1": "jogging_1",
    "Jogging-2": "jogging_2",
    "Skating2-1": "skating2_1",
    "Skating2-2": "skating2_2",
    "FaceOcc1": "faceocc1",
    "FaceOcc2": "faceocc2",
    "Human4-2": "human4_2",
}

#: Runs of a stochastic tracker in VOT's baseline experiment.
VOT_RUNS = 15


@dataclass(frozen=True)
class SequenceRecord:
    """What one run of a tracker over one sequence produced.

    Attributes:
        name: the sequence.
        regions: one entry a frame: ``[code]`` (VOT markers, VOT-LT's first frame) or a
            region (``x, y, w, h`` or polygon corners).
        scores: tracker confidence a frame (``None`` at initialisation).
        times: seconds spent a frame.
        failures: VOT failures (re-initialisations).
    """

    name: str
    regions: list[list[float]]
    scores: list[float | None]
    times: list[float]
    failures: int = 0


def tracker_dir(results: Path, bench: Benchmark, tracker: str) -> Path:
    """``results/<benchmark>/<tracker>``."""
    return Path(results) / bench.name / tracker


def list_trackers(
    results: Path, bench: Benchmark, patterns: Iterable[str] | None = None
) -> list[str]:
    """Trackers with results for ``bench`` (sorted), optionally those matching ``patterns``
    (names or shell patterns such as ``siamrpn*``).

    Raises:
        TrackingResultsError: no results folder, or no tracker matches.
    """
    folder = Path(results) / bench.name
    if not folder.is_dir():
        raise TrackingResultsError(f"no results for {bench.name}: folder {folder} does not exist")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if patterns:
        chosen = []
        for pattern in patterns:
            hits = [t for t in found if fnmatch.fnmatchcase(t, pattern)]
            if not hits:
                raise TrackingResultsError(
                    f"no tracker {pattern!r} in {folder} (found: {', '.join(found) or 'none'})"
                )
            chosen.extend(h for h in hits if h not in chosen)
        found = chosen
    if not found:
        raise TrackingResultsError(f"{folder} holds no tracker results")
    return found


# -- writing -------------------------------------------------------------------------------


def write_record(folder: Path, bench: Benchmark, record: SequenceRecord) -> list[Path]:
    """Write one sequence's result files under ``folder`` (a tracker's folder).

    Returns:
        The files written.
    """
    name = record.name
    if bench.protocol == "vot":
        base = folder / "baseline" / name
        return [_write(base / f"{name}_001.txt", (_vot_line(r) for r in record.regions))]
    if bench.protocol == "vot-lt":
        base = folder / "longterm" / name
        scores = ("" if s is None else f"{s:.6f}" for s in record.scores)
        return [
            _write(base / f"{name}_001.txt", (_plain_line(r) for r in record.regions)),
            _write(base / f"{name}_001_confidence.value", scores),
            _write(base / f"{name}_time.txt", (f"{t:.6f}" for t in record.times)),
        ]
    if bench.layout == "got10k":
        base = folder / name
        return [
            _write(base / f"{name}_001.txt", (_plain_line(r) for r in record.regions)),
            _write(base / f"{name}_time.txt", (f"{t:.6f}" for t in record.times)),
        ]
    return [_write(folder / f"{name}.txt", (_plain_line(r) for r in record.regions))]


def _plain_line(region: list[float]) -> str:
    return ",".join(str(int(v)) if len(region) == 1 else repr(float(v)) for v in region)


def _vot_line(region: list[float]) -> str:
    if len(region) == 1:
        return f"{int(region[0]):d}"
    # PySOT formats through C's "%.4f" of a float (float32) value.
    return ",".join(f"{float(np.float32(v)):.4f}" for v in region)


def _write(path: Path, lines: Iterable[str]) -> Path:
    """Write ``lines`` to ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- reading -------------------------------------------------------------------------------


def read_rows(path: Path, *, separators: re.Pattern[str] = _SEPARATORS) -> list[list[float]]:
    """Lines of numbers (trailing blank lines ignored).

    Raises:
        TrackingResultsError: missing file, blank line inside, or not numbers.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise TrackingResultsError(f"missing result file {path}") from None
    except OSError as exc:
        raise TrackingResultsError(f"cannot read {path}: {exc}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append([float(v) for v in separators.split(line.strip()) if v])
        except ValueError:
            raise TrackingResultsError(
                f"{path}, line {number}: not numbers: {line[:60]!r}"
            ) from None
        if not rows[-1]:
            raise TrackingResultsError(f"{path}, line {number} is empty")
    return rows


def read_boxes(folder: Path, bench: Benchmark, sequence: str, *, length: int) -> list[np.ndarray]:
    """A tracker's ``x, y, w, h`` boxes on one OPE sequence: one ``(length, 4)`` array per
    run (GOT-10k may hold several runs; the others one).

    Raises:
        TrackingResultsError: no result file, or one with the wrong number of lines or
            values.
    """
    paths = _box_files(folder, bench, sequence)
    out = []
    for path in paths:
        rows = read_rows(path)
        if any(len(r) != 4 for r in rows):
            raise TrackingResultsError(f"{path}: expected 4 values x,y,w,h on every line")
        if len(rows) > length and sequence == "monkey-17":  # as PySOT: LaSOT's extra frame
            rows = rows[:length]
        if len(rows) != length:
            raise TrackingResultsError(f"{path}: {len(rows)} lines for {length} frames")
        out.append(np.asarray(rows, np.float64).reshape(-1, 4))
    return out


def _box_files(folder: Path, bench: Benchmark, sequence: str) -> list[Path]:
    candidates = [folder / f"{sequence}.txt"]
    if bench.layout == "got10k":
        runs = sorted((folder / sequence).glob(f"{glob.escape(sequence)}_[0-9][0-9][0-9].txt"))
        if runs:
            return runs
    if bench.layout == "otb":
        old = _OTB_OLD_NAMES.get(sequence, sequence[:1].lower() + sequence[1:])
        candidates.append(folder / f"{old}.txt")
    for path in candidates:
        if path.is_file():
            return [path]
    raise TrackingResultsError(f"missing result file {candidates[0]}")


def read_vot_runs(folder: Path, sequence: str, length: int) -> list[Regions]:
    """A tracker's VOT runs on one sequence (15 when there are 15 files, else the first).

    Raises:
        TrackingResultsError: no result file, or one with more lines than frames.
    """
    base = folder / "baseline" / sequence
    paths = sorted(base.glob(f"{glob.escape(sequence)}_[0-9][0-9][0-9].txt"))
    if not paths:
        raise TrackingResultsError(f"missing result file {base / f'{sequence}_001.txt'}")
    if len(paths) != VOT_RUNS:
        paths = paths[:1]
    runs = []
    for path in paths:
        rows = read_rows(path, separators=_COMMAS)
        if len(rows) > length:
            raise TrackingResultsError(f"{path}: {len(rows)} lines for {length} frames")
        runs.append(Regions.from_rows(rows))
    return runs


def read_vot_lt(folder: Path, sequence: str, length: int) -> tuple[Regions, np.ndarray]:
    """A tracker's long-term run on one sequence: regions and confidences (NaN at the
    first frame).

    Raises:
        TrackingResultsError: a file is missing, malformed, or of the wrong length.
    """
    base = folder / "longterm" / sequence
    path = base / f"{sequence}_001.txt"
    rows = read_rows(path)
    conf_path = base / f"{sequence}_001_confidence.value"
    try:
        lines = conf_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise TrackingResultsError(f"missing result file {conf_path}") from None
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    try:
        scores = [float("nan")] + [float(v) for v in lines[1:]]
    except ValueError:
        raise TrackingResultsError(f"{conf_path}: not one number a line") from None
    if len(rows) != length or len(scores) != length:
        raise TrackingResultsError(
            f"{path}: {len(rows)} regions and {len(scores)} confidences for {length} frames"
        )
    return Regions.from_rows(rows), np.asarray(scores, np.float64)
