"""Training data for every matcher family.

Pair sources (COCO-format detection/segmentation sets, video sets in GOT-10k / LaSOT /
ImageNet-VID layout) and the built-in synthetic e-commerce generator
(:mod:`trainers.data.synth`), which writes a COCO-format dataset of procedurally made
products, their catalog photos and cluttered scenes with boxes and visible masks.

Public API::

    from trainers.data import build_pair_dataset
    train_set = build_pair_dataset(recipe.train, exemplar_size=127, search_size=255,
                                   context_amount=0.5, split="train")
    train_set.set_epoch(epoch)            # every epoch; items depend on (seed, epoch, i)
    item = train_set[i]                   # dict of tensors, see trainers.data.dataset

and the pieces: :class:`PairDataset`, :class:`PairSampler`, :class:`CocoSource`,
:class:`VideoSource`, :class:`View`, :class:`Pair`.

Modules: ``builder`` (the one function reading the recipe), ``dataset`` (items),
``pairs`` (mixing, negatives), ``sources`` (the source interface), ``coco`` and
``video`` (the sources), ``crops`` (crop geometry); augmentation is
:mod:`trainers.augment`.

Names are resolved lazily (PEP 562), as in :mod:`trainers.data.synth`: the generator's
spawned worker processes import ``trainers.data.synth.worker`` through this package and
must not import torch or ``matcher``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_pair_dataset": "trainers.data.builder",
    "build_source": "trainers.data.builder",
    "PairDataset": "trainers.data.dataset",
    "Pair": "trainers.data.pairs",
    "PairSampler": "trainers.data.pairs",
    "PairSource": "trainers.data.sources",
    "View": "trainers.data.sources",
    "CocoSource": "trainers.data.coco",
    "VideoSource": "trainers.data.video",
    "Track": "trainers.data.video",
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
