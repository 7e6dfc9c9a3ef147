"""The built-in synthetic e-commerce generator (``siammatch synth``).

Procedural products (packaging with printed text, logos, patterns and colours, in shapes
from boxes to bottles) grouped in families of near-identical lookalikes, a catalog photo
of each, and scenes (store shelves, table flat lays, real photos) where products and their
lookalikes are placed with scale, rotation, perspective, lighting, blur, occlusion and
clutter, written as a COCO dataset with visible boxes and masks.

Public API::

    from trainers.data.synth import generate, write_video_dataset
    generate("data/synth", num_products=60, num_scenes=1000, seed=0)
    # tracking sequences in a benchmark's layout (``siammatch synth --video``)
    write_video_dataset("data/vot", layout="vot", sequences=10, frames=150, seed=0)

and the pieces it is built from, for tests and other trainers: :func:`design_catalog`,
:func:`render_product`, :func:`catalog_photo`, :class:`ProductBank`,
:func:`compose_scene`, :class:`SceneSettings`, :func:`contact_sheet`.

The names are resolved lazily (PEP 562): the generator's worker processes import
:mod:`trainers.data.synth.worker` through this package and must not pay for importing
``matcher`` and torch, which only the entry point (:mod:`~trainers.data.synth.dataset`,
for its error types) needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "generate": "trainers.data.synth.dataset",
    "is_synth_dataset": "trainers.data.synth.dataset",
    "ProductSpec": "trainers.data.synth.designs",
    "design_catalog": "trainers.data.synth.families",
    "design_foreign": "trainers.data.synth.families",
    "render_product": "trainers.data.synth.packaging",
    "catalog_photo": "trainers.data.synth.catalog",
    "ProductBank": "trainers.data.synth.bank",
    "Scene": "trainers.data.synth.scenes",
    "SceneInstance": "trainers.data.synth.scenes",
    "SceneSettings": "trainers.data.synth.scenes",
    "compose_scene": "trainers.data.synth.scenes",
    "scene_rng": "trainers.data.synth.worker",
    "contact_sheet": "trainers.data.synth.preview",
    "write_video_dataset": "trainers.data.synth.video_layouts",
    "render_video": "trainers.data.synth.video",
    "VideoSettings": "trainers.data.synth.video",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
