"""Recipes: YAML files in ``configs/`` loaded into frozen, typed dataclasses.

A recipe names one model and everything needed to run and train it: ``model`` (architecture
and geometry), ``inference`` (tracking hyper-parameters and the match-mode search) and
``train`` (schedule and data). Loading validates every key against the dataclasses below:
an unknown key or a value of the wrong type raises :class:`~matcher.errors.ConfigError`
naming the dotted key. ``key=value`` overrides (``inference.match.score_threshold=0.4``) go
through the same validation. A recipe may start from another with ``_base_: other_recipe``.

Only builders and entry points read recipes; modules receive plain arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from matcher.errors import ConfigError, UnknownComponentError

# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneConfig:
    """Backbone choice and its constructor arguments.

    Attributes:
        name: registered backbone name (see ``matcher.models.backbones.BACKBONES``).
        used_layers: indices of the stages whose outputs are returned, in order.
        width_mult: channel multiplier (MobileNetV2 x1.4, AlexNet width).
        bn_eps: BatchNorm epsilon (siamfc-pytorch uses 1e-6).
    """

    name: str
    used_layers: tuple[int, ...] = ()
    width_mult: float = 1.0
    bn_eps: float = 1e-5


@dataclass(frozen=True)
class NeckConfig:
    """Adjust layers between backbone and head.

    Attributes:
        name: ``"none"`` or ``"adjust"`` (1x1 conv + BN per level, template centre crop).
        in_channels: channels of each backbone level.
        out_channels: channels after adjustment, one per level.
        center_size: side of the centre crop applied to template features narrower than
            ``crop_below``.
        crop_below: feature maps narrower than this are template maps and get cropped.
    """

    name: str = "none"
    in_channels: tuple[int, ...] = ()
    out_channels: tuple[int, ...] = ()
    center_size: int = 7
    crop_below: int = 20


@dataclass(frozen=True)
class HeadConfig:
    """Correlation head.

    Attributes:
        name: registered head name (``siamfc``, ``depthwise_rpn``, ``multi_rpn``,
            ``upchannel_rpn`` ...).
        in_channels: feature channels entering the head, one per level.
        hidden: hidden width of the correlation branches.
        weighted: multi-level RPN fuses levels with learned softmax weights.
        out_scale: SiamFC response scale.
        num_convs: SiamFC++ head: 3x3 convs in each of the cls and bbox towers
            (video_analyst ``num_conv3x3``; each shrinks the score map by 2 cells).
        conv_bn: SiamFC++ head: per tower conv, whether it has a BatchNorm
            (``head_conv_bn``); empty means none has.
    """

    name: str
    in_channels: tuple[int, ...] = (256,)
    hidden: int = 256
    weighted: bool = False
    out_scale: float = 0.001
    num_convs: int = 3
    conv_bn: tuple[bool, ...] = ()


@dataclass(frozen=True)
class AnchorConfig:
    """Anchor shapes of RPN heads (PySOT convention: base area ``stride**2``)."""

    ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    scales: tuple[float, ...] = (8.0,)


@dataclass(frozen=True)
class MaskConfig:
    """SiamMask's mask branch.

    Attributes:
        mask_size: side of the mask head's per-cell output (63 in SiamMask).
        refine: masks come from the refine module (127x127, SiamMask-sharp) rather than
            the mask head (SiamMask base).
    """

    mask_size: int = 63
    refine: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and input geometry.

    Attributes:
        backbone / neck / head: component configurations.
        anchor: anchor shapes; ``None`` for anchor-free heads.
        mask: the mask branch (SiamMask); ``None`` for box-only models.
        input_format: channel order the network was trained on, ``"bgr"`` or ``"rgb"``.
        exemplar_size: template crop side in pixels.
        instance_size: search crop side in pixels used by the tracker.
        stride: total stride of the score map in input pixels.
        base_size: extra score-map cells beyond ``(instance - exemplar) // stride + 1``
            (PySOT ``BASE_SIZE``; 8 for the ResNet/MobileNet models).
        context_amount: context added around a box when cropping (fraction of w + h).
    """

    backbone: BackboneConfig
    head: HeadConfig
    neck: NeckConfig = field(default_factory=NeckConfig)
    anchor: AnchorConfig | None = None
    mask: MaskConfig | None = None
    input_format: Literal["bgr", "rgb"] = "bgr"
    exemplar_size: int = 127
    instance_size: int = 255
    stride: int = 8
    base_size: int = 0
    context_amount: float = 0.5


@dataclass(frozen=True)
class TrackConfig:
    """Tracking-mode hyper-parameters (those of the original tracker).

    Attributes:
        tracker: registered tracker name (``pysot_rpn``, ``dasiamrpn``, ``siamfc``).
        penalty_k: scale/ratio change penalty.
        window_influence: weight of the cosine window.
        lr: size smoothing factor.
        instance_size: search crop side; ``None`` uses ``model.instance_size``.
        adaptive: DaSiamRPN switches to ``small_object_instance_size`` for objects
            smaller than ``small_object_fraction`` of the image.
        scale_num / scale_step / scale_penalty / scale_lr / response_up: SiamFC's
            multi-scale search.
        mask_threshold: mask probability above which a pixel belongs to the object
            (SiamMask's ``MASK_THERSHOLD`` / ``seg_thr``); also used in match mode.
        distractor_aware: DaSiamRPN's distractor-aware re-scoring and local-to-global
            re-detection (RPN trackers; off reproduces the originals exactly).
        distractor_weight / distractor_threshold / distractor_per_frame /
            distractor_memory / distractor_decay: weight of the distractor term, score a
            secondary peak needs to become a distractor, distractors taken per frame,
            templates remembered, per-frame decay of their weights.
        redetect_threshold: a pick scoring below this counts as lost (0 disables).
        redetect_step: network-input pixels the search grows by per lost frame.
        lost_instance_size: largest search while lost.
        lost_window_influence: cosine-window weight while lost.
    """

    tracker: str
    penalty_k: float = 0.04
    window_influence: float = 0.44
    lr: float = 0.4
    instance_size: int | None = None
    adaptive: bool = False
    small_object_instance_size: int = 287
    small_object_fraction: float = 0.004
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    response_up: int = 16
    mask_threshold: float = 0.3
    distractor_aware: bool = False
    distractor_weight: float = 0.5
    distractor_threshold: float = 0.6
    distractor_per_frame: int = 3
    distractor_memory: int = 8
    distractor_decay: float = 0.2
    redetect_threshold: float = 0.0
    redetect_step: int = 64
    lost_instance_size: int = 831
    lost_window_influence: float = 0.001


@dataclass(frozen=True)
class MatchConfig:
    """Match mode: the one-shot search of a whole scene.

    Attributes:
        score_threshold: instances scoring below are dropped.
        max_instances: default cap on returned instances.
        nms_iou: IoU above which a lower-scored candidate is suppressed.
        min_object_fraction / max_object_fraction: range of product sizes searched, as
            the product box's longer side over the scene's shorter side.
        scale_step: ratio between consecutive pyramid levels.
        max_upscale: the scene is never enlarged by more than this.
        working_size: levels larger than this (pixels, either side) are tiled.
        pre_nms_top_k: candidates kept per level and reference before NMS.
        penalty_k: penalty on box size/ratio departing from the reference's at that level.
        box_voting_iou: each kept box becomes the score-weighted mean of the candidates
            overlapping it by at least this IoU (0 disables).
        distractor_weight: strength of distractor-aware re-scoring (``match(...,
            distractor_aware=True)``).
        distractor_candidates: candidates compared with each other when re-scoring.
    """

    score_threshold: float = 0.5
    max_instances: int = 5
    nms_iou: float = 0.5
    min_object_fraction: float = 0.1
    max_object_fraction: float = 1.0
    scale_step: float = 1.26
    max_upscale: float = 4.0
    working_size: int = 1024
    pre_nms_top_k: int = 300
    penalty_k: float = 0.04
    box_voting_iou: float = 0.7
    distractor_weight: float = 1.0
    distractor_candidates: int = 12


@dataclass(frozen=True)
class InferenceConfig:
    """Tracking and match-mode settings."""

    track: TrackConfig
    match: MatchConfig = field(default_factory=MatchConfig)


@dataclass(frozen=True)
class TrainConfig:
    """Training schedule (the original project's recipe where one exists).

    Attributes:
        epochs: number of epochs.
        batch_size: pairs per step (per process).
        optimizer: ``"sgd"`` or ``"adamw"``.
        base_lr / momentum / weight_decay: optimiser settings.
        warmup_epochs / warmup_start_lr: linear or step warm-up.
        lr_schedule: decay after warm-up, ``"log"``, ``"cosine"`` or ``"exp"``.
        end_lr: learning rate at the last epoch.
        backbone_lr_mult: learning-rate multiplier of the backbone once unfrozen.
        unfreeze_epoch: epoch from which the backbone trains.
        negative_ratio: probability of a negative pair.
        grad_clip: max gradient norm (0 disables).
        cls_weight / loc_weight: loss weights.
    """

    epochs: int = 20
    batch_size: int = 28
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
    negative_ratio: float = 0.2
    grad_clip: float = 10.0
    cls_weight: float = 1.0
    loc_weight: float = 1.2


@dataclass(frozen=True)
class Recipe:
    """One model recipe: what ``configs/<name>.yaml`` loads into.

    Attributes:
        name: recipe id, equal to the file name without ``.yaml``.
        family: builder family (``siamfc``, ``siamrpn`` ...).
        checkpoint_layout: key layout of the published weights (``pysot``,
            ``dasiamrpn``, ``siamfc_pytorch``, ``siammatch`` ...).
        description: one line for listings.
    """

    name: str
    family: str
    model: ModelConfig
    inference: InferenceConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint_layout: str = "siammatch"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain YAML-able data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


# --------------------------------------------------------------------------------------
# Derived geometry: one place for values computed from the recipe
# --------------------------------------------------------------------------------------


def score_size(model: ModelConfig, instance_size: int) -> int:
    """Side of the score map for a search crop of ``instance_size`` pixels."""
    return (instance_size - model.exemplar_size) // model.stride + 1 + model.base_size


def score_offset(model: ModelConfig) -> float:
    """Input-pixel coordinate of score cell 0's centre, for any search size.

    With the search side ``X = instance_size + k * stride`` the score map grows by ``k``
    cells and cell ``j`` is centred on pixel ``score_offset + stride * j``.
    """
    size = score_size(model, model.instance_size)
    return (model.instance_size - 1 - (size - 1) * model.stride) / 2


def num_anchors(model: ModelConfig) -> int:
    """Anchors per score cell (1 for anchor-free heads)."""
    if model.anchor is None:
        return 1
    return len(model.anchor.ratios) * len(model.anchor.scales)


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------

_RECIPE_DIR_ENV = "SIAMMATCH_CONFIG_DIR"


def recipe_dir() -> Path:
    """Folder holding the recipes: ``$SIAMMATCH_CONFIG_DIR`` or the project's ``configs/``."""
    env = os.environ.get(_RECIPE_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "configs"


def list_recipes() -> list[str]:
    """Names of all recipes in :func:`recipe_dir` (files starting with ``_`` are partials)."""
    return sorted(p.stem for p in recipe_dir().glob("*.yaml") if not p.stem.startswith("_"))


def load_recipe(name_or_path: str | os.PathLike, overrides: list[str] | None = None) -> Recipe:
    """Load and validate a recipe.

    Args:
        name_or_path: a recipe name from :func:`list_recipes` or a path to a YAML file.
        overrides: ``"dotted.key=value"`` strings applied after loading; values are parsed
            as YAML scalars/lists.

    Returns:
        The frozen, validated :class:`Recipe`.

    Raises:
        UnknownComponentError: no recipe of that name.
        ConfigError: unknown key, wrong type, or malformed override.
    """
    path = _resolve_recipe_path(name_or_path)
    raw = _load_raw(path, seen=())
    raw.setdefault("name", path.stem)
    for item in overrides or []:
        apply_override(raw, item)
    return recipe_from_dict(raw)


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    """Validate plain data (e.g. the recipe stored in a checkpoint) into a :class:`Recipe`.

    Raises:
        ConfigError: unknown key or wrong type, naming the dotted key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a recipe must be a mapping, got {type(raw).__name__}")
    return _build(Recipe, raw, "")


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to raw recipe data in place.

    Raises:
        ConfigError: the override has no ``=`` or names a key outside the schema.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
    parts = key.split(".")
    _check_path_in_schema(parts)
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _resolve_recipe_path(name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"recipe file {text!r} does not exist")
        return path
    path = recipe_dir() / f"{text}.yaml"
    if not path.is_file():
        valid = ", ".join(list_recipes()) or "(none)"
        raise UnknownComponentError(f"unknown recipe {text!r}; valid names: {valid}")
    return path


def _load_raw(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        raise ConfigError(f"recipe {path.name}: circular _base_ chain")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path.name} must be a mapping at the top level")
    base = data.pop("_base_", None)
    if base is None:
        return data
    base_path = _resolve_recipe_path(base)
    merged = _load_raw(base_path, (*seen, path))
    merged.pop("name", None)
    merged.pop("description", None)
    return _deep_merge(merged, data)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_path_in_schema(parts: list[str]) -> None:
    cls: Any = Recipe
    done: list[str] = []
    for part in parts:
        cls = _unwrap_optional(cls)
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(
                f"override key {'.'.join(parts)!r}: {'.'.join(done)} is not a section"
            )
        hints = typing.get_type_hints(cls)
        if part not in hints:
            raise ConfigError(_unknown_key_message(".".join([*done, part]), part, hints))
        cls = hints[part]
        done.append(part)


def _unknown_key_message(dotted: str, key: str, hints: dict[str, Any]) -> str:
    msg = f"unknown recipe key {dotted!r}"
    close = difflib.get_close_matches(key, list(hints), n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg + f"; valid keys here: {', '.join(sorted(hints))}"


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _build(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"recipe key {path or '<root>'!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{path}.{key}" if path else str(key)
        if key not in hints:
            raise ConfigError(_unknown_key_message(dotted, str(key), hints))
        kwargs[key] = _coerce(value, hints[key], dotted)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f" in {path!r}" if path else ""
        raise ConfigError(f"missing recipe key(s){where}: {', '.join(missing)}")
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"recipe key {path!r}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"recipe key {path!r} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"recipe key {path!r} must be a list, got {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"recipe key {path!r} must be a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"recipe key {path!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"recipe key {path!r} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"recipe key {path!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"recipe key {path!r} must be a string, got {value!r}")
        return value
    raise ConfigError(f"recipe key {path!r}: unsupported schema type {tp!r}")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
