"""The one function that turns a recipe's ``train`` section into a pair dataset.

:func:`build_pair_dataset` is the only code in :mod:`trainers.data` that reads a
:class:`~matcher.train_config.TrainConfig`; every source, the sampler, the crops and the
augmentation receive plain arguments. It validates everything before reading a dataset,
generates missing synthetic sets (under a file lock beside the set's folder, so concurrent
DDP ranks generate once; the generator spawns processes, so call it from an entry point
guarded by ``if __name__ == "__main__"``), and raises
:class:`~matcher.errors.ConfigError` naming the offending source.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from matcher.errors import ConfigError, InvalidArgumentError
from matcher.train_config import AugmentConfig, DataSourceConfig, TrainConfig
from trainers.augment import PairAugment
from trainers.data.coco import CocoSource, load_coco_json
from trainers.data.crops import Jitter
from trainers.data.dataset import PairDataset
from trainers.data.pairs import PairSampler
from trainers.data.sources import PairSource
from trainers.data.video import VideoSource, load_got10k, load_lasot, load_vid

logger = logging.getLogger(__name__)

#: Validation items use ``train.seed + VAL_SEED_OFFSET`` (and epoch 0, always), so they
#: never share a random stream with training items.
VAL_SEED_OFFSET = 2**31


def build_pair_dataset(
    train: TrainConfig,
    *,
    exemplar_size: int,
    search_size: int,
    context_amount: float,
    split: Literal["train", "val"],
    epoch_length: int | None = None,
) -> PairDataset:
    """The training or validation pair dataset of a recipe.

    ``split="train"`` uses ``train.data`` with all of ``train.augment``, seed
    ``train.seed`` and ``steps_per_epoch * batch_size`` items (or ``epoch_length``); call
    ``set_epoch`` each epoch. ``split="val"`` uses ``train.val_data`` with
    ``train.val_pairs`` items that never change (fixed seed, ``set_epoch`` ignored): the
    same pairs, negatives and search-crop shift/scale every time (so targets are not
    always dead centre), no template jitter and no photometric, blur, flip or grey
    augmentation.

    Args:
        train: the recipe's ``train`` section.
        exemplar_size: template crop side ``Z`` (``model.exemplar_size``).
        search_size: search crop side ``X`` (``train.search_size`` or
            ``model.instance_size``).
        context_amount: context around boxes (``model.context_amount``).
        split: ``"train"`` or ``"val"``.
        epoch_length: items per training epoch, overriding ``steps_per_epoch *
            batch_size``.

    Returns:
        The dataset (items as documented in :mod:`trainers.data.dataset`).

    Raises:
        ConfigError: no sources for the split, an unknown kind or pair mode, a missing
            folder or file, a corrupt or empty annotation set, a value out of range.
    """
    if split not in ("train", "val"):
        raise ConfigError(f"split must be 'train' or 'val', got {split!r}")
    key = "train.data" if split == "train" else "train.val_data"
    configs = train.data if split == "train" else train.val_data
    if not configs:
        raise ConfigError(f"{key} lists no pair sources")
    if split == "train":
        length = (
            epoch_length if epoch_length is not None else train.steps_per_epoch * train.batch_size
        )
    else:
        length = train.val_pairs
    if length < 1:
        raise ConfigError(f"{split} pair dataset length must be >= 1, got {length}")
    if exemplar_size < 1 or search_size < exemplar_size:
        raise ConfigError(
            f"need 1 <= exemplar_size <= search_size, got {exemplar_size} and {search_size}"
        )
    if not context_amount >= 0:
        raise ConfigError(f"context_amount must be >= 0, got {context_amount}")
    _check_augment(train.augment)
    for index, cfg in enumerate(configs):
        if not (cfg.ratio > 0 and math.isfinite(cfg.ratio)):
            raise ConfigError(f"{key}[{index}].ratio must be a positive number, got {cfg.ratio}")
    workers = max(1, min(train.workers, os.cpu_count() or 1))
    sources = [
        build_source(
            cfg, index=index, name=f"{key}[{index}] ({cfg.kind} {cfg.root})", workers=workers
        )
        for index, cfg in enumerate(configs)
    ]
    sampler = PairSampler(
        sources,
        ratios=[cfg.ratio for cfg in configs],
        negative_ratio=train.negative_ratio,
        same_category_negatives=train.same_category_negatives,
    )
    aug = train.augment
    search_jitter = Jitter(aug.search_shift, aug.search_scale)
    geometry = {
        "exemplar_size": exemplar_size,
        "search_size": search_size,
        "context_amount": context_amount,
    }
    try:
        if split == "val":
            return PairDataset(
                sampler,
                length=length,
                seed=train.seed + VAL_SEED_OFFSET,
                search_jitter=search_jitter,
                vary_by_epoch=False,
                **geometry,
            )
        return PairDataset(
            sampler,
            length=length,
            seed=train.seed,
            template_jitter=Jitter(aug.template_shift, aug.template_scale),
            search_jitter=search_jitter,
            augment=PairAugment(
                blur=aug.blur,
                motion_blur=aug.motion_blur,
                flip=aug.flip,
                color=aug.color,
                gray=aug.gray,
                relight=aug.relight,
                jpeg=aug.jpeg,
            ),
            **geometry,
        )
    except InvalidArgumentError as exc:
        raise ConfigError(str(exc)) from exc


def _check_augment(aug: AugmentConfig) -> None:
    # The probabilities and shifts are range-checked when the recipe loads
    # (AugmentConfig.__post_init__); a scale jitter of 1 or more would flip the crop.
    for name in ("template_scale", "search_scale"):
        value = getattr(aug, name)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"train.augment.{name} must be in [0, 1), got {value}")


# -- sources ----------------------------------------------------------------------------


def build_source(cfg: DataSourceConfig, *, index: int, name: str, workers: int = 1) -> PairSource:
    """One pair source from its recipe entry.

    Args:
        cfg: the source's configuration.
        index: its position among the split's sources.
        name: how errors and logs name it.
        workers: processes for generating a missing synthetic set.

    Raises:
        ConfigError: see :func:`build_pair_dataset`.
    """
    make = _KINDS.get(cfg.kind)
    if make is None:
        raise ConfigError(f"{name}: unknown kind {cfg.kind!r}; valid kinds: {', '.join(_KINDS)}")
    if cfg.kind == "real" and cfg.pair_mode != "catalog":
        raise ConfigError(f"{name}: kind 'real' gives catalog pairs only (pair_mode: catalog)")
    if cfg.kind not in ("coco", "synth", "real") and cfg.pair_mode != "instance":
        raise ConfigError(
            f"{name}: pair_mode {cfg.pair_mode!r} applies to coco/synth/real sources only"
        )
    return make(cfg, index, name, workers)


@dataclass(frozen=True, eq=False)
class CocoFiles:
    """Where a ``coco`` or ``synth`` source's data lies.

    Attributes:
        document: the parsed annotation file (:func:`~trainers.data.coco.load_coco_json`).
        image_root: folder the images' ``file_name`` are relative to.
        annotation_dir: folder of the annotation file (catalog photos are relative to it).
    """

    document: dict[str, Any]
    image_root: Path
    annotation_dir: Path


def coco_files(cfg: DataSourceConfig, *, name: str, workers: int = 1) -> CocoFiles:
    """Read a ``coco`` or ``synth`` source's annotations (generating a missing synthetic set).

    Args:
        cfg: the source's configuration.
        name: how errors and logs name it.
        workers: processes for generating a missing synthetic set.

    Raises:
        ConfigError: another kind, a missing folder or file, or a corrupt annotation set.
    """
    if cfg.kind in ("synth", "real"):
        root = Path(cfg.root).expanduser().absolute()
        _ensure_generated(cfg, root, name=name, workers=workers)
        path = root / (cfg.annotations or "annotations.json")
        document = load_coco_json(path, name=name)
        info = document.get("info") if isinstance(document.get("info"), dict) else {}
        images = root / str(info.get("images_dir", "images"))
        return CocoFiles(document, image_root=images, annotation_dir=path.parent)
    if cfg.kind != "coco":
        raise ConfigError(f"{name}: kind {cfg.kind!r} is not a COCO-format source (coco, synth)")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{name}: image folder {root} does not exist")
    if not cfg.annotations:
        raise ConfigError(f"{name}: a coco source needs 'annotations' (the COCO JSON file)")
    path = root / Path(cfg.annotations).expanduser()  # an absolute path replaces root
    return CocoFiles(load_coco_json(path, name=name), image_root=root, annotation_dir=path.parent)


def _coco(cfg: DataSourceConfig, index: int, name: str, workers: int) -> PairSource:
    files = coco_files(cfg, name=name, workers=workers)
    return CocoSource(
        files.document,
        image_root=files.image_root,
        annotation_dir=files.annotation_dir,
        mode=cfg.pair_mode,
        index=index,
        name=name,
    )


def _ensure_generated(cfg: DataSourceConfig, root: Path, *, name: str, workers: int) -> None:
    """Generate the ``synth`` or ``real`` set of ``cfg`` at ``root`` unless it exists (once
    across processes): :func:`trainers.data.synth.generate` (``products``, ``scenes``,
    ``seed``) or :func:`trainers.data.real_artwork.generate_real_artwork` (``scenes``,
    ``seed``)."""
    if root.exists():
        return
    make: Callable[[], Any]
    if cfg.kind == "synth":
        from trainers.data.synth import generate

        kind = "synthetic"
        what = f"{cfg.products} products, {cfg.scenes} scenes, seed {cfg.seed}"

        def make() -> Any:
            return generate(
                root,
                num_products=cfg.products,
                num_scenes=cfg.scenes,
                seed=cfg.seed,
                workers=workers,
            )

    else:
        from trainers.data.real_artwork import generate_real_artwork

        kind = "real-artwork"
        what = f"{cfg.scenes} scenes, seed {cfg.seed}"

        def make() -> Any:
            return generate_real_artwork(root, num_scenes=cfg.scenes, seed=cfg.seed)

    with _set_lock(root):
        if root.exists():  # another process made it while we waited
            return
        logger.info("%s: %s does not exist; generating a %s set (%s)", name, root, kind, what)
        try:
            make()
        except InvalidArgumentError as exc:
            raise ConfigError(f"{name}: cannot generate the {kind} set: {exc}") from exc


def _set_lock(root: Path) -> FileLock:
    """An exclusive lock for generating the set at ``root`` (``.<name>.lock`` beside it)."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {root.parent}: {exc}") from exc
    return FileLock(root.parent / f".{root.name}.lock")


def _got10k(cfg: DataSourceConfig, index: int, name: str, workers: int) -> PairSource:
    tracks = load_got10k(Path(cfg.root).expanduser(), cfg.split, name=name)
    return VideoSource(tracks, max_gap=cfg.max_gap, index=index, name=name)


def _lasot(cfg: DataSourceConfig, index: int, name: str, workers: int) -> PairSource:
    tracks = load_lasot(Path(cfg.root).expanduser(), name=name)
    return VideoSource(tracks, max_gap=cfg.max_gap, index=index, name=name)


def _vid(cfg: DataSourceConfig, index: int, name: str, workers: int) -> PairSource:
    tracks = load_vid(Path(cfg.root).expanduser(), cfg.split, name=name)
    return VideoSource(tracks, max_gap=cfg.max_gap, index=index, name=name)


_KINDS: dict[str, Callable[[DataSourceConfig, int, str, int], PairSource]] = {
    "coco": _coco,
    "synth": _coco,
    "real": _coco,
    "got10k": _got10k,
    "lasot": _lasot,
    "vid": _vid,
}
