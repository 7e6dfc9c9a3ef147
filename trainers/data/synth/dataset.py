"""Writing a synthetic e-commerce dataset: the ``siammatch synth`` entry point.

Layout of the output folder::

    DIR/annotations.json        COCO: images, annotations (visible boxes + RLE masks),
                                categories (one per product), plus "products" and "info"
    DIR/images/000001.jpg ...   scenes
    DIR/catalog/00001.png ...   one catalog photo per product (category id)

Arguments are checked before any work. The dataset is written into a temporary sibling
folder and renamed into place at the end, so an interrupted or failed run leaves either
nothing or the previous dataset, never a half-written one. Products are rendered once
per worker process; scenes are composed in a ``multiprocessing`` pool (spawn context) and
written by the workers. Scene ``i`` draws only from ``SeedSequence(seed, (SCENE_KEY, i))``,
so the output is byte-identical for a given seed whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from matcher.checks import check_int
from matcher.errors import InvalidArgumentError
from trainers.data.synth import worker
from trainers.data.synth.coco import LOW_VISIBILITY_RULE, assemble
from trainers.data.synth.families import design_catalog, design_foreign
from trainers.data.synth.scenes import SceneSettings

logger = logging.getLogger(__name__)

GENERATOR = "siammatch.synth"
FORMAT_VERSION = 1
ANNOTATIONS = "annotations.json"
MAX_PRODUCTS = 10_000
MAX_SCENES = 1_000_000
MIN_SIDE, MAX_SIDE = 64, 4096
MAX_WORKERS = 64
_CHUNK = 8  # scenes per task message


def generate(
    out_dir: str | os.PathLike[str],
    *,
    num_products: int,
    num_scenes: int,
    seed: int = 0,
    image_size: tuple[int, int] = (480, 640),
    workers: int = 2,
    overwrite: bool = False,
    settings: SceneSettings | None = None,
    progress: bool = True,
) -> Path:
    """Generate a synthetic e-commerce dataset.

    Args:
        out_dir: output folder; must not exist, be empty, or (with ``overwrite``) hold a
            dataset written by this generator.
        num_products: catalog size, 1 to :data:`MAX_PRODUCTS`; products come in families
            of a base design and 1-3 lookalikes.
        num_scenes: number of scene images, 1 to :data:`MAX_SCENES`.
        seed: dataset seed, ``>= 0``; the same seed gives byte-identical files.
        image_size: ``(height, width)`` of the scenes, each side 64-4096 pixels.
        workers: processes composing scenes; 1 works in the calling process.
        overwrite: replace an existing dataset in ``out_dir``.
        settings: scene composition settings (defaults: :class:`SceneSettings`).
        progress: show tqdm progress bars (on stderr).

    Returns:
        The dataset folder.

    Raises:
        InvalidArgumentError: a count, size, seed or setting is out of range, or
            ``out_dir`` is a file, a non-empty folder (without ``overwrite``), a folder
            that is not a dataset of this generator, or not writable.
    """
    settings = settings or SceneSettings()
    _check_args(num_products, num_scenes, seed, image_size, workers, settings)
    out = Path(out_dir).expanduser().absolute()
    _check_target(out, overwrite=overwrite)
    catalog = design_catalog(num_products, seed=seed)
    foreign = design_foreign(min(max(12, num_products // 2), 200), seed=seed)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write into {out.parent}: {exc}") from exc
    try:
        (tmp / worker.IMAGES_DIR).mkdir()
        (tmp / worker.CATALOG_DIR).mkdir()
        job = worker.Job(
            str(tmp),
            seed,
            (int(image_size[0]), int(image_size[1])),
            settings,
            tuple(catalog),
            tuple(foreign),
        )
        with _mapper(job, workers) as run:
            catalog_files = list(
                tqdm(
                    run(worker.catalog_task, range(num_products)),
                    total=num_products,
                    desc="catalog",
                    unit="product",
                    disable=not progress,
                )
            )
            scenes = list(
                tqdm(
                    run(worker.scene_task, range(num_scenes)),
                    total=num_scenes,
                    desc="scenes",
                    unit="scene",
                    disable=not progress,
                )
            )
        info = {
            "description": "siammatch synthetic e-commerce dataset",
            "generator": GENERATOR,
            "version": FORMAT_VERSION,
            "seed": seed,
            "num_products": num_products,
            "num_scenes": num_scenes,
            "num_foreign_products": len(foreign),
            "image_size": [int(image_size[0]), int(image_size[1])],
            "images_dir": worker.IMAGES_DIR,
            "catalog_dir": worker.CATALOG_DIR,
            "low_visibility": LOW_VISIBILITY_RULE,
            "settings": dataclasses.asdict(settings),
        }
        document = assemble(info=info, specs=catalog, catalog_files=catalog_files, scenes=scenes)
        (tmp / ANNOTATIONS).write_text(json.dumps(document, separators=(",", ":")))
        os.chmod(tmp, 0o755)
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    count = len(document["annotations"])
    logger.info(
        "wrote %d scenes, %d products, %d instances to %s", num_scenes, num_products, count, out
    )
    return out


def is_synth_dataset(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds an ``annotations.json`` written by this generator."""
    try:
        with open(Path(path) / ANNOTATIONS, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return False
    return f'"generator":"{GENERATOR}"' in head


# -- checks ---------------------------------------------------------------------------


def _check_args(
    num_products: int,
    num_scenes: int,
    seed: int,
    image_size: tuple[int, int],
    workers: int,
    settings: SceneSettings,
) -> None:
    check_int("num_products", num_products, 1, MAX_PRODUCTS)
    check_int("num_scenes", num_scenes, 1, MAX_SCENES)
    check_int("seed", seed, 0, 2**63 - 1)
    check_int("workers", workers, 1, MAX_WORKERS)
    if not isinstance(image_size, tuple | list) or len(image_size) != 2:
        raise InvalidArgumentError(f"image_size must be (height, width), got {image_size!r}")
    for side in image_size:
        check_int("image_size side", side, MIN_SIDE, MAX_SIDE)
    s = settings
    for name in (
        "p_lookalike",
        "p_negative",
        "foreign_share",
        "p_occluders",
        "min_visible",
        "perspective",
        "p_defocus",
        "p_motion",
    ):
        value = getattr(s, name)
        if not 0.0 <= value <= 1.0:
            raise InvalidArgumentError(f"settings.{name} must be in [0, 1], got {value}")
    if s.p_defocus + s.p_motion > 1.0:
        raise InvalidArgumentError("settings.p_defocus + settings.p_motion must not exceed 1")
    if len(s.layout_weights) != 3 or min(s.layout_weights) < 0 or sum(s.layout_weights) <= 0:
        raise InvalidArgumentError(
            f"settings.layout_weights must be 3 non-negative weights (shelf, table, photo) "
            f"with a positive sum, got {s.layout_weights}"
        )
    for name, lo, hi in (
        ("table_objects", 1, 64),
        ("photo_objects", 1, 64),
        ("jpeg_quality", 1, 100),
    ):
        a, b = getattr(s, name)
        if not lo <= a <= b <= hi:
            raise InvalidArgumentError(f"settings.{name} must be (min, max) in [{lo}, {hi}]")
    a, b = s.noise_sigma
    if not 0 <= a <= b <= 50:
        raise InvalidArgumentError("settings.noise_sigma must be (min, max) in [0, 50]")


def _check_target(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InvalidArgumentError(
                f"{out} is not empty; pass overwrite=True (--overwrite) to replace it"
            )
        if not is_synth_dataset(out):
            raise InvalidArgumentError(
                f"{out} is not empty and is not a dataset written by this generator; "
                "refusing to replace it"
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot create {out.parent}: {exc}") from exc
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"{out.parent} is not writable")


def _commit(tmp: Path, out: Path) -> None:
    """Move the finished dataset into place, replacing an empty or previous one."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(trash)
        tmp.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(out)


@contextmanager
def _mapper(job: worker.Job, workers: int) -> Iterator[Callable[..., Iterator[Any]]]:
    """An ordered ``map(fn, items)`` over a spawn-context pool, or in this process."""
    if workers == 1:
        worker.init_worker(job)
        try:
            yield map
        finally:
            worker.release_worker()
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=worker.init_worker, initargs=(job,)) as pool:

        def run(fn: Callable[[int], Any], items: range) -> Iterator[Any]:
            return pool.imap(fn, items, chunksize=_CHUNK)

        yield run
