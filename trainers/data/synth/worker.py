"""The per-process half of dataset generation: render, compose and write files.

A :class:`Job` (specs, seed, size, settings, output folder) is installed once per process
by :func:`init_worker` (the ``multiprocessing.Pool`` initializer, or the calling process
itself when ``workers == 1``). :func:`catalog_task` and :func:`scene_task` then each write
one file and return its record. Each scene draws from its own generator,
``SeedSequence(seed, spawn_key=(SCENE_KEY, index))``, so its pixels and annotations do not
depend on which process makes it or in which order.

This module must stay importable without ``matcher`` (and hence without torch): worker
processes are spawned and import only what the tasks need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from trainers.data.synth.bank import ProductBank, prepare
from trainers.data.synth.catalog import catalog_photo
from trainers.data.synth.coco import scene_records
from trainers.data.synth.designs import ProductSpec
from trainers.data.synth.packaging import render_product
from trainers.data.synth.scenes import SceneSettings, compose_scene

SCENE_KEY = 1
CATALOG_KEY = 3
IMAGES_DIR = "images"
CATALOG_DIR = "catalog"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs.

    Attributes:
        root: output folder (the temporary folder being filled).
        seed: dataset seed.
        image_size: ``(H, W)`` of the scenes.
        settings: scene composition settings.
        catalog: catalog product specs, ids ``1..N``.
        foreign: non-catalog product specs.
    """

    root: str
    seed: int
    image_size: tuple[int, int]
    settings: SceneSettings
    catalog: tuple[ProductSpec, ...]
    foreign: tuple[ProductSpec, ...]


_state: dict[str, Any] = {}


def init_worker(job: Job) -> None:
    """Install ``job`` in this process (a ``Pool`` initializer); OpenCV goes single-threaded."""
    _state["threads"] = cv2.getNumThreads()
    cv2.setNumThreads(1)
    _state["job"] = job
    _state["bank"] = ProductBank(job.catalog, job.foreign)


def release_worker() -> None:
    """Forget the installed job and restore OpenCV's threads (calling process as worker)."""
    if "threads" in _state:
        cv2.setNumThreads(_state["threads"])
    _state.clear()


def catalog_file(product_id: int) -> str:
    """Path of a product's catalog photo, relative to the dataset root."""
    return f"{CATALOG_DIR}/{product_id:05d}.png"


def scene_file(image_id: int) -> str:
    """File name of a scene, relative to the dataset's ``images/`` folder."""
    return f"{image_id:06d}.jpg"


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of scene ``index`` (0-based) of a dataset."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SCENE_KEY, index)))


def catalog_task(index: int) -> str:
    """Render catalog product ``index`` (0-based) and write its photo; returns its path."""
    job: Job = _state["job"]
    spec = job.catalog[index]
    rgba = render_product(spec)
    _state["bank"].put(prepare(spec, rgba))
    rng = np.random.default_rng(
        np.random.SeedSequence(job.seed, spawn_key=(CATALOG_KEY, spec.product_id))
    )
    photo = catalog_photo(rgba, rng=rng)
    relative = catalog_file(spec.product_id)
    _write(Path(job.root) / relative, photo, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    return relative


def scene_task(index: int) -> dict[str, Any]:
    """Compose scene ``index`` (0-based), write its JPEG and return its COCO records."""
    job: Job = _state["job"]
    scene = compose_scene(
        scene_rng(job.seed, index),
        _state["bank"],
        image_size=job.image_size,
        settings=job.settings,
    )
    image_id = index + 1
    name = scene_file(image_id)
    _write(
        Path(job.root) / IMAGES_DIR / name,
        scene.image,
        [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality],
    )
    return scene_records(
        scene, image_id=image_id, file_name=name, min_visible=job.settings.min_visible
    )


def _write(path: Path, rgb: np.ndarray, params: list[int]) -> None:
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - encoders do not fail on valid uint8 images
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())
