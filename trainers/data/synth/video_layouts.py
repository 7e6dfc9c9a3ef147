"""Synthetic tracking sequences written in the tracking benchmarks' own layouts
(``siammatch synth --video --layout ...``), so every reader, the runner and the scorer of
:mod:`trainers.evaluate.tracking` run end to end without downloads.

Layouts (``N`` the frame number from 1; ``i`` the sequence number from 1):

* ``otb``: ``Synth{i:02d}/img/{N:04d}.jpg`` and ``groundtruth_rect.txt`` (integer
  ``x,y,w,h``); with two or more sequences, ``Synth02`` has two targets
  (``groundtruth_rect.1.txt``, ``groundtruth_rect.2.txt``) as OTB's Jogging and Skating2;
* ``uav123``: ``data_seq/UAV123/synth{i}/{N:06d}.jpg``, ``anno/UAV123/synth{i}.txt``
  (``NaN`` rows where the target is invisible) and ``anno/UAV123/att/synth{i}.txt``;
* ``lasot``: ``product/product-{i}/img/{N:08d}.jpg``, ``groundtruth.txt``,
  ``full_occlusion.txt``, ``out_of_view.txt``, ``nlp.txt``, and ``testing_set.txt``;
* ``got10k``: ``val/list.txt``, ``val/GOT-10k_Val_{i:06d}/{N:08d}.jpg``,
  ``groundtruth.txt``, ``absence.label``, ``cover.label`` (visible fraction in eighths,
  rounded up: 0 = fully covered), ``cut_by_image.label``, ``meta_info.ini``;
* ``vot``: ``list.txt``, ``product{i}/{N:08d}.jpg``, ``groundtruth.txt`` (the product's
  rotated rectangle, 8 numbers) and the five ``<tag>.tag`` files;
* ``vot-lt``: ``list.txt``, ``product{i}/{N:08d}.jpg``, ``groundtruth.txt`` (``x,y,w,h``,
  ``nan`` rows where the target is invisible).

The target may leave the image and be fully occluded in the ``uav123``, ``lasot``,
``got10k`` and ``vot-lt`` layouts; in ``otb`` and ``vot`` it stays in view, partly
occluded at most. The dataset is written to a temporary folder and moved into place when
complete; a hidden ``.siammatch-video.json`` records how it was made.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from matcher.checks import check_int
from matcher.errors import InvalidArgumentError
from trainers.data.synth.dataset import MAX_SIDE, MAX_WORKERS, MIN_SIDE, _commit
from trainers.data.synth.video_files import LAYOUTS, Job, write_index, write_sequence

logger = logging.getLogger(__name__)

MARKER = ".siammatch-video.json"
MAX_SEQUENCES = 10_000
MAX_FRAMES = 100_000

__all__ = ["LAYOUTS", "MARKER", "write_video_dataset"]


def write_video_dataset(
    out_dir: str | Path,
    *,
    layout: str,
    sequences: int,
    frames: int,
    seed: int = 0,
    image_size: tuple[int, int] = (240, 320),
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate tracking sequences in a benchmark's layout.

    Args:
        out_dir: output folder; must not exist, be empty, or (with ``overwrite``) hold a
            dataset written by this function.
        layout: ``otb``, ``uav123``, ``lasot``, ``got10k``, ``vot`` or ``vot-lt``.
        sequences: number of sequences.
        frames: frames per sequence (>= 2).
        seed: same seed, same files.
        image_size: ``(height, width)`` of the frames.
        workers: processes (spawned) generating sequences; 1 works here.
        overwrite: replace an earlier dataset of this function.
        progress: show a tqdm bar.

    Returns:
        The dataset folder.

    Raises:
        InvalidArgumentError: an unknown layout, a value out of range, or an output folder
            that cannot be used.
    """
    if layout not in LAYOUTS:
        raise InvalidArgumentError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    check_int("sequences", sequences, 1, MAX_SEQUENCES)
    check_int("frames", frames, 2, MAX_FRAMES)
    check_int("seed", seed, 0, 2**63 - 1)
    check_int("workers", workers, 1, MAX_WORKERS)
    for side in image_size:
        check_int("image size side", side, MIN_SIDE, MAX_SIDE)
    out = Path(out_dir).expanduser().absolute()
    _check_target(out, overwrite=overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        job = Job(str(tmp), layout, sequences, frames, tuple(image_size), seed)
        bar = tqdm(total=sequences, desc=f"{layout} sequences", unit="seq", disable=not progress)
        with bar:
            for _ in _map(job, workers):
                bar.update(1)
        write_index(job)
        info = {"layout": layout, "sequences": sequences, "frames": frames, "seed": seed,
                "image_size": list(image_size)}  # fmt: skip
        (tmp / MARKER).write_text(json.dumps(info))
        tmp.chmod(0o755)
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_target(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InvalidArgumentError(f"{out} is not empty; pass --overwrite to replace it")
        if not (out / MARKER).is_file():
            raise InvalidArgumentError(
                f"{out} is not empty and was not written by synth --video; refusing to replace it"
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot create {out.parent}: {exc}") from exc


def _map(job: Job, workers: int) -> Iterator[Any]:
    tasks = [(job, i) for i in range(1, job.sequences + 1)]
    if workers == 1 or job.sequences == 1:
        yield from map(write_sequence, tasks)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, job.sequences)) as pool:
        yield from pool.imap_unordered(write_sequence, tasks)
