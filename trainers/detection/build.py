"""The one function that turns a recipe's ``train`` section into an episode dataset.

:func:`build_episode_dataset` reads the sources (``coco`` or ``synth``, through
:func:`trainers.data.builder.coco_files`, which generates a missing synthetic set), the
excluded categories of a one-shot split (``train.episodes``) and the counts; everything
below it receives plain arguments.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Literal

import yaml

from matcher.errors import ConfigError
from matcher.train_config import EpisodeConfig, TrainConfig
from trainers.data.builder import VAL_SEED_OFFSET, coco_files
from trainers.detection.episodes import EpisodeDataset, EpisodeSource

logger = logging.getLogger(__name__)


def excluded_categories(episodes: EpisodeConfig) -> frozenset[int]:
    """The category ids of ``exclude_categories`` and ``exclude_file`` together.

    Raises:
        ConfigError: the file is missing, unreadable, or not a list of ids (nor a
            mapping with an ``unseen`` list).
    """
    ids = set(episodes.exclude_categories)
    if episodes.exclude_file:
        path = Path(episodes.exclude_file).expanduser()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"train.episodes.exclude_file {str(path)!r}: {exc}") from None
        if isinstance(data, dict):
            data = data.get("unseen")
        if not isinstance(data, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in data
        ):
            raise ConfigError(
                f"train.episodes.exclude_file {str(path)!r} must hold a list of category ids "
                "or a mapping with an 'unseen' list"
            )
        ids.update(data)
    return frozenset(ids)


def build_episode_dataset(
    train: TrainConfig,
    *,
    reference_size: int,
    reference_context: float,
    split: Literal["train", "val"],
    epoch_length: int | None = None,
) -> EpisodeDataset:
    """The training or validation episodes of a recipe.

    ``split="train"`` uses ``train.data`` without the excluded categories, seed
    ``train.seed``, ``steps_per_epoch * batch_size`` items (or ``epoch_length``) and the
    ``train.augment.flip`` probability; call ``set_epoch`` each epoch. ``split="val"``
    uses ``train.val_data`` restricted by ``train.episodes.val_categories``, ``val_pairs``
    fixed items and no flips.

    Args:
        train: the recipe's ``train`` section.
        reference_size: reference crop side (``model.detection.reference_size``).
        reference_context: margin around reference boxes
            (``model.detection.reference_context``).
        split: ``"train"`` or ``"val"``.
        epoch_length: items per training epoch, overriding ``steps_per_epoch * batch_size``.

    Raises:
        ConfigError: no sources, a kind other than ``coco``/``synth``, a pair mode other
            than ``category``/``catalog``, missing files, or a value out of range.
    """
    if split not in ("train", "val"):
        raise ConfigError(f"split must be 'train' or 'val', got {split!r}")
    key = "train.data" if split == "train" else "train.val_data"
    configs = train.data if split == "train" else train.val_data
    if not configs:
        raise ConfigError(f"{key} lists no sources")
    episodes = train.episodes
    if episodes.shots < 1:
        raise ConfigError(f"train.episodes.shots must be >= 1, got {episodes.shots}")
    if split == "train":
        length = epoch_length or train.steps_per_epoch * train.batch_size
    else:
        length = train.val_pairs
    if length < 1:
        raise ConfigError(f"{split} episode count must be >= 1, got {length}")
    if not 0.0 <= train.augment.flip <= 1.0:
        raise ConfigError(f"train.augment.flip must be in [0, 1], got {train.augment.flip}")
    excluded = excluded_categories(episodes)
    exclude, only = excluded, None
    if split == "val":
        choice = episodes.val_categories
        exclude = excluded if choice == "seen" else frozenset()
        only = excluded if choice == "unseen" else None
    workers = max(1, min(train.workers, os.cpu_count() or 1))
    sources = []
    for index, cfg in enumerate(configs):
        name = f"{key}[{index}] ({cfg.kind} {cfg.root})"
        if cfg.kind not in ("coco", "synth"):
            raise ConfigError(f"{name}: episodes come from coco or synth sources")
        if cfg.pair_mode not in ("category", "catalog"):
            raise ConfigError(
                f"{name}: episodes take pair_mode category or catalog, got {cfg.pair_mode!r}"
            )
        if not (cfg.ratio > 0 and math.isfinite(cfg.ratio)):
            raise ConfigError(f"{name}: ratio must be a positive number, got {cfg.ratio}")
        files = coco_files(cfg, name=name, workers=workers)
        sources.append(
            EpisodeSource(
                files, mode=cfg.pair_mode, exclude=exclude, only=only, index=index, name=name
            )
        )
    return EpisodeDataset(
        sources,
        ratios=[cfg.ratio for cfg in configs],
        length=length,
        seed=train.seed + (VAL_SEED_OFFSET if split == "val" else 0),
        shots=episodes.shots,
        reference_size=reference_size,
        reference_context=reference_context,
        flip=train.augment.flip if split == "train" else 0.0,
        vary_by_epoch=split == "train",
    )
