"""The ``train`` section of a recipe: schedule, data, augmentation, targets and losses.

Kept apart from :mod:`matcher.model_config` (architecture) and
:mod:`matcher.inference_config` (inference) because only the training core reads it; the
dataclasses are still part of the frozen :class:`Recipe` and validated the same way
(unknown keys and wrong types are errors naming the key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from matcher.checks import Ranges, check_fields


@dataclass(frozen=True)
class DataSourceConfig:
    """One source of training pairs.

    Attributes:
        kind: ``coco`` (any COCO-format detection/segmentation set), ``synth`` (this
            project's generator output, a COCO set with catalog photos; generated on
            first use when ``root`` does not exist), ``real`` (product artwork and
            backgrounds from the train-split photographs of the real-photo set, in the
            synth layout, generated likewise: :mod:`trainers.data.real_artwork`),
            ``got10k``, ``lasot`` or ``vid`` (video datasets in those layouts).
        root: dataset folder (COCO: the images folder).
        annotations: COCO annotation JSON (absolute, or relative to ``root``; synth:
            ``annotations.json``).
        split: GOT-10k / ImageNet-VID split folder.
        ratio: relative sampling weight among the sources.
        pair_mode: COCO/synth pairs: ``instance`` (one instance seen twice under
            augmentation), ``category`` (two instances of a category from different
            images), ``catalog`` (synth: the product's catalog photo as reference, a scene
            instance as search — the deployment case).
        max_gap: video pairs are at most this many frames apart.
        products / scenes / seed: synth and real (``scenes`` and ``seed`` only), the
            dataset generated when ``root`` is missing.
    """

    kind: Literal["coco", "synth", "real", "got10k", "lasot", "vid"]
    root: str
    annotations: str = ""
    split: str = "train"
    ratio: float = 1.0
    pair_mode: Literal["instance", "category", "catalog"] = "instance"
    max_gap: int = 100
    products: int = 100
    scenes: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class AugmentConfig:
    """Crop jitter and photometric augmentation (PySOT's defaults).

    Attributes:
        template_shift / search_shift: maximum crop-centre shift, in crop pixels.
        template_scale / search_scale: maximum relative scale jitter (``1 +- s``).
        blur: probability of a Gaussian blur of the search crop.
        motion_blur: probability of a motion blur of the search crop.
        flip: probability of a horizontal flip (template and search independently).
        color: strength of the colour (PCA) jitter (0 disables).
        gray: probability of turning both crops grey.
        relight: probability of another light on the search crop (brightness, contrast,
            colour temperature, shadow; :class:`trainers.augment.Relight`).
        jpeg: probability of a low-quality JPEG re-encoding of the search crop.
    """

    template_shift: float = 4.0
    template_scale: float = 0.05
    search_shift: float = 64.0
    search_scale: float = 0.18
    blur: float = 0.0
    motion_blur: float = 0.0
    flip: float = 0.0
    color: float = 1.0
    gray: float = 0.0
    relight: float = 0.0
    jpeg: float = 0.0

    _RANGES: ClassVar[Ranges] = (
        *((name, 0.0, 1.0, False) for name in ("blur", "motion_blur", "flip", "gray")),
        ("relight", 0.0, 1.0, False),
        ("jpeg", 0.0, 1.0, False),
        ("template_shift", 0.0, 4096.0, False),
        ("search_shift", 0.0, 4096.0, False),
        ("color", 0.0, 100.0, False),
    )

    def __post_init__(self) -> None:
        check_fields(self, "train.augment.", self._RANGES)


@dataclass(frozen=True)
class TargetConfig:
    """Target assignment and loss shapes.

    Attributes:
        pos_iou / neg_iou: RPN anchors above/below these IoUs are positive/negative.
        pos_num / total_num: RPN sampling caps per pair (positives, all labelled).
        neg_radius: negative pairs label anchors within this many cells of the (wrong)
            object's centre as negatives.
        r_pos: SiamFC: score cells within this distance (search pixels, L1) of the
            target centre are positive.
        focal_alpha / focal_gamma: SiamFC++ classification focal loss.
        smooth_l1_beta: RPN box regression, smooth-L1 transition (0 = plain L1, PySOT).
    """

    pos_iou: float = 0.6
    neg_iou: float = 0.3
    pos_num: int = 16
    total_num: int = 64
    neg_radius: int = 3
    r_pos: float = 16.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    smooth_l1_beta: float = 0.0

    _RANGES: ClassVar[Ranges] = (
        ("pos_iou", 0.0, 1.0, False),
        ("neg_iou", 0.0, 1.0, False),
        ("pos_num", 0, 100_000, False),
        ("total_num", 1, 100_000, False),
        ("neg_radius", 0, 10_000, False),
        ("r_pos", 0.0, 1e6, False),
        ("focal_alpha", 0.0, 1.0, False),
        ("focal_gamma", 0.0, 100.0, False),
        ("smooth_l1_beta", 0.0, 1e6, False),
    )

    def __post_init__(self) -> None:
        check_fields(self, "train.targets.", self._RANGES)


@dataclass(frozen=True)
class EpisodeConfig:
    """Detection episodes (family ``siam_mask_rcnn``): a scene, a category present in it,
    references of that category and all its instances in the scene as targets.

    The sources' ``pair_mode`` picks the references: ``category`` crops an instance of
    the category from another image (the one-shot COCO protocol), ``catalog`` takes the
    product's catalog photo (product sets such as the synthetic one).

    Attributes:
        shots: references per episode (k-shot; their encodings are averaged).
        exclude_categories: category ids never drawn for training episodes, neither as the
            episode's category nor as references (the unseen classes of a one-shot
            split); their instances stay in the scenes, as background.
        exclude_file: a YAML/JSON file with more such ids: a list, or a mapping whose
            ``unseen`` entry is that list (a one-shot split file).
        val_categories: which categories validation episodes use: ``all``, ``seen`` (not
            excluded) or ``unseen`` (only the excluded ones).
    """

    shots: int = 1
    exclude_categories: tuple[int, ...] = ()
    exclude_file: str = ""
    val_categories: Literal["all", "seen", "unseen"] = "all"


@dataclass(frozen=True)
class TrainConfig:
    """Training schedule, data and losses (the original project's recipe where one exists).

    Attributes:
        epochs / steps_per_epoch: run length.
        batch_size: pairs per step (per process).
        search_size: training search crop side (``model.instance_size`` if ``None``).
        optimizer: ``"sgd"`` or ``"adamw"``.
        base_lr / momentum / weight_decay: optimiser settings.
        warmup_epochs / warmup_start_lr: warm-up from ``warmup_start_lr`` to ``base_lr``.
        lr_schedule: decay after warm-up, ``"log"``, ``"cosine"`` or ``"exp"``.
        end_lr: learning rate at the last epoch.
        backbone_lr_mult: learning-rate multiplier of the backbone once unfrozen.
        unfreeze_epoch: epoch from which the backbone trains (BN too).
        trainable_backbone: backbone submodule prefixes trained after unfreezing (empty:
            the whole backbone).
        negative_ratio: probability of a negative pair.
        same_category_negatives: fraction of negatives whose search object shares the
            reference's category (look-alike distractors).
        grad_clip: max gradient norm (0 disables).
        amp: mixed precision (bfloat16 autocast) on GPU.
        seed: seed of sampling, augmentation and initialisation.
        workers: data-loading processes per training process.
        checkpoint_every / val_every / log_every: in steps.
        val_pairs: held-out pairs per validation.
        cls_weight / loc_weight / mask_weight / ctr_weight: loss weights.
        data / val_data: training and held-out pair sources.
        augment / targets: see :class:`AugmentConfig`, :class:`TargetConfig`.
        episodes: detection episodes, see :class:`EpisodeConfig` (family
            ``siam_mask_rcnn``; ``val_pairs`` counts its validation episodes).
    """

    epochs: int = 20
    steps_per_epoch: int = 1000
    batch_size: int = 28
    search_size: int | None = None
    optimizer: Literal["sgd", "adamw"] = "sgd"
    base_lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    warmup_start_lr: float = 0.001
    lr_schedule: Literal["log", "cosine", "exp"] = "log"
    end_lr: float = 0.0005
    backbone_lr_mult: float = 0.1
    unfreeze_epoch: int = 10
    trainable_backbone: tuple[str, ...] = ()
    negative_ratio: float = 0.2
    same_category_negatives: float = 0.5
    grad_clip: float = 10.0
    amp: bool = True
    seed: int = 0
    workers: int = 2
    checkpoint_every: int = 1000
    val_every: int = 1000
    val_pairs: int = 256
    log_every: int = 20
    cls_weight: float = 1.0
    loc_weight: float = 1.2
    mask_weight: float = 36.0
    ctr_weight: float = 1.0
    data: tuple[DataSourceConfig, ...] = ()
    val_data: tuple[DataSourceConfig, ...] = ()
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)

    _RANGES: ClassVar[Ranges] = (
        ("epochs", 1, 1_000_000, False),
        ("steps_per_epoch", 1, 10**9, False),
        ("batch_size", 1, 65536, False),
        ("search_size", 1, 8192, False),
        ("base_lr", 0.0, 100.0, True),
        ("momentum", 0.0, 1.0, False),
        ("weight_decay", 0.0, 1.0, False),
        ("warmup_epochs", 0, 1_000_000, False),
        ("warmup_start_lr", 0.0, 100.0, False),
        ("end_lr", 0.0, 100.0, False),
        ("backbone_lr_mult", 0.0, 1000.0, False),
        ("unfreeze_epoch", 0, 1_000_000, False),
        ("negative_ratio", 0.0, 1.0, False),
        ("same_category_negatives", 0.0, 1.0, False),
        ("grad_clip", 0.0, 1e9, False),
        ("seed", 0, 2**63 - 1, False),
        ("workers", 0, 1024, False),
        ("checkpoint_every", 0, 10**9, False),
        ("val_every", 0, 10**9, False),
        ("val_pairs", 0, 10**9, False),
        ("log_every", 0, 10**9, False),
        *((name, 0.0, 1e6, False) for name in ("cls_weight", "loc_weight", "mask_weight")),
        ("ctr_weight", 0.0, 1e6, False),
    )

    def __post_init__(self) -> None:
        check_fields(self, "train.", self._RANGES)
