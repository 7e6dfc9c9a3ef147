"""Running a tracker over a benchmark, as PySOT's ``tools/test.py`` does, into result files.

Per protocol (boxes ``x, y, w, h``; the tracker API takes and returns ``x0, y0, x1, y1``):

* **OPE** (OTB, UAV123, LaSOT, GOT-10k): initialise on the first frame's box, track every
  later frame, write every frame's box (the first is the initial box);
* **VOT** (supervised): initialise (marker ``1``), track and compare each output with the
  truth (VOT overlap within the image); a zero overlap is a failure (marker ``2``), the
  next 4 frames are skipped (``0``) and the tracker is re-initialised on the 5th. A mask
  model's rotated-rectangle polygon is written instead of its box;
* **VOT-LT**: like OPE, with ``1`` for the first frame and the tracker's confidence beside
  every box.

As in PySOT, the initial box is the axis-aligned box of the truth with centre
``x + w / 2`` (rectangles) or the polygon's mean corner and the polygon's area (VOT), and
top-left ``centre - (size - 1) / 2``; it is clipped to the image, which the tracker API
requires. Sequences run in worker processes when ``workers > 1``: they are started with
the *spawn* method (never forked from a process whose torch or OpenMP thread pools are
running) and each loads the matcher once.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from matcher.errors import DatasetLayoutError
from trainers.evaluate.tracking.datasets import Sequence, TrackingDataset
from trainers.evaluate.tracking.region import FAILURE, INIT, SKIP, vot_overlap
from trainers.evaluate.tracking.results import SequenceRecord, tracker_dir, write_record

logger = logging.getLogger(__name__)

#: Frames between a failure and the re-initialisation (VOT's supervised protocol).
SKIP_FRAMES = 5


@dataclass(frozen=True)
class TrackerSpec:
    """What a worker process needs to build the tracker (picklable).

    Attributes:
        recipe: recipe name or YAML path (``None``: the one stored in ``weights``).
        weights: weights file, or ``None``.
        device: ``cpu``, ``cuda`` ...
        overrides: recipe ``key=value`` overrides.
        threads: torch intra-op threads in each worker.
        prepare: prepare the network for inference (``matcher.load(..., prepare=...)``),
            as :func:`matcher.load_trained` does by default: a worker must run the network
            the way the calling process does, or the two disagree in the last bits.
    """

    recipe: str | None
    weights: str | None
    device: str = "cpu"
    overrides: tuple[str, ...] = ()
    threads: int = 1
    prepare: bool = True

    def load(self) -> Any:
        """The matcher (``matcher.load``)."""
        import matcher

        return matcher.load(
            self.recipe,
            self.weights,
            device=self.device,
            overrides=list(self.overrides) or None,
            prepare=self.prepare,
        )


def init_box(gt_row: np.ndarray) -> tuple[float, float, float, float]:
    """PySOT's initial ``x, y, w, h`` from a truth row (4-number box or 8-number polygon)."""
    region = np.asarray(gt_row, np.float64)
    if region.size == 8:
        xs, ys = region[0::2], region[1::2]
        cx, cy = float(np.mean(xs)), float(np.mean(ys))
        x1, x2, y1, y2 = xs.min(), xs.max(), ys.min(), ys.max()
        a1 = np.linalg.norm(region[0:2] - region[2:4]) * np.linalg.norm(region[2:4] - region[4:6])
        a2 = (x2 - x1) * (y2 - y1)
        s = math.sqrt(a1 / a2) if a2 > 0 else 1.0
        w, h = s * (x2 - x1) + 1, s * (y2 - y1) + 1
    else:
        x, y, w, h = (float(v) for v in region[:4])
        cx, cy = x + w / 2, y + h / 2
    return (cx - (w - 1) / 2, cy - (h - 1) / 2, float(w), float(h))


def vot_polygon(gt_row: np.ndarray) -> list[float]:
    """The truth as the polygon PySOT's runner compares with (a box ``x, y, w, h`` becomes
    corners ``x .. x + w - 1``)."""
    r = [float(v) for v in gt_row]
    if len(r) == 4:
        x, y, w, h = r
        return [x, y, x, y + h - 1, x + w - 1, y + h - 1, x + w - 1, y]
    return r


def _clipped_xyxy(xywh: tuple[float, float, float, float], size: tuple[int, int]):
    x, y, w, h = xywh
    width, height = size
    x0, y0 = min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)
    x1, y1 = min(max(x + w, x0 + 1.0), float(width)), min(max(y + h, y0 + 1.0), float(height))
    return (x0, y0, x1, y1)


def _xywh(box: tuple[float, float, float, float]) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def run_sequence(
    tracker_factory: Callable[[], Any], seq: Sequence, protocol: str
) -> SequenceRecord:
    """Run one tracker over one sequence under ``protocol`` (``ope``, ``vot``, ``vot-lt``).

    Raises:
        DatasetLayoutError: a frame cannot be read, or the first box is missing.
    """
    from matcher.errors import InvalidImageError
    from matcher.images import load_image

    regions: list[list[float]] = []
    scores: list[float | None] = []
    times: list[float] = []
    failures = 0
    restart = 0
    tracker = None
    for index, path in enumerate(seq.frames):
        if index < restart:
            regions.append([SKIP])
            scores.append(None)
            times.append(0.0)
            continue
        try:
            frame = load_image(path)
        except InvalidImageError as exc:
            raise DatasetLayoutError(f"cannot read frame {path}: {exc}") from None
        tic = time.perf_counter()
        if index == restart:
            if not np.all(np.isfinite(seq.gt[index])):
                raise DatasetLayoutError(f"sequence {seq.name}: no target box in frame {index + 1}")
            row = vot_polygon(seq.gt[index]) if protocol == "vot" else seq.gt[index]
            xywh = init_box(np.asarray(row))
            size = (frame.shape[1], frame.shape[0])
            tracker = tracker_factory()
            tracker.init(frame, _clipped_xyxy(xywh, size))
            regions.append([INIT] if protocol != "ope" else list(xywh))
            scores.append(None)
        else:
            inst = tracker.track(frame)
            box = _xywh(inst.box)
            scores.append(float(inst.score))
            if protocol != "vot":
                regions.append(box)
            else:
                pred = box
                if inst.polygon is not None:
                    pred = [float(v) for point in inst.polygon for v in point]
                size = (frame.shape[1], frame.shape[0])
                if vot_overlap(pred, vot_polygon(seq.gt[index]), size) > 0:
                    regions.append(pred)
                else:
                    regions.append([FAILURE])
                    failures += 1
                    restart = index + SKIP_FRAMES
        times.append(time.perf_counter() - tic)
    return SequenceRecord(seq.name, regions, scores, times, failures)


# -- over a dataset, in this process or in spawned workers ---------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(spec: TrackerSpec) -> None:
    import torch

    torch.set_num_threads(max(1, spec.threads))
    _WORKER["matcher"] = spec.load()


def _worker_run(job: tuple[Sequence, str]) -> SequenceRecord:
    seq, protocol = job
    return run_sequence(_WORKER["matcher"].tracker, seq, protocol)


def run_benchmark(
    dataset: TrackingDataset,
    out: str | Path,
    *,
    name: str,
    spec: TrackerSpec,
    matcher_obj: Any | None = None,
    workers: int = 1,
    progress: bool = True,
) -> list[SequenceRecord]:
    """Run a tracker over every sequence and write its result files.

    Args:
        dataset: the benchmark's sequences.
        out: results root; files go to ``out/<benchmark>/<name>/``.
        name: the tracker's name in the results.
        spec: how to build the matcher (in worker processes).
        matcher_obj: an already loaded matcher for ``workers == 1`` (else loaded from
            ``spec``).
        workers: processes; 1 runs here.
        progress: show a tqdm bar over frames.

    Returns:
        The records, in the dataset's order.
    """
    folder = tracker_dir(Path(out), dataset.benchmark, name)
    protocol = dataset.benchmark.protocol
    jobs = [(seq, protocol) for seq in dataset.sequences]
    records: dict[str, SequenceRecord] = {}
    bar = tqdm(
        total=dataset.num_frames,
        desc=f"{name} on {dataset.name}",
        unit="frame",
        disable=not progress,
    )
    try:
        for record in _records(jobs, spec, matcher_obj, workers):
            write_record(folder, dataset.benchmark, record)
            records[record.name] = record
            bar.update(len(record.regions))
            if protocol == "vot":
                bar.set_postfix(failures=sum(r.failures for r in records.values()))
    finally:
        bar.close()
    return [records[s.name] for s in dataset.sequences]


def _records(
    jobs: list[tuple[Sequence, str]], spec: TrackerSpec, matcher_obj: Any | None, workers: int
) -> Iterator[SequenceRecord]:
    if workers <= 1 or len(jobs) <= 1:
        m = matcher_obj if matcher_obj is not None else spec.load()
        for seq, protocol in jobs:
            yield run_sequence(m.tracker, seq, protocol)
        return
    workers = min(workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    worker_spec = replace(spec, threads=threads)
    with context.Pool(workers, initializer=_worker_init, initargs=(worker_spec,)) as pool:
        yield from pool.imap_unordered(_worker_run, jobs)
