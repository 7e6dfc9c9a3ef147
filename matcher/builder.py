"""From a recipe (and weights) to a ready matcher: ``matcher.build`` and ``matcher.load``.

One builder per family, registered in :data:`FAMILIES`, turns a :class:`Recipe` into a
matcher object; :func:`load` adds the weights. Builders and entry points are the only code
that reads recipes.
"""

from __future__ import annotations

import logging
import os

import torch

from matcher.baselines import BASELINES, build_baseline
from matcher.checkpoints.io import load_weights, read_checkpoint
from matcher.checkpoints.shipped import shipped_weights
from matcher.config import Recipe
from matcher.errors import CheckpointError, ConfigError, InvalidArgumentError
from matcher.inference.anchors import anchor_shapes
from matcher.inference.decode import AnchorDecoder, ResponseDecoder
from matcher.inference.point_decoder import PointDecoder
from matcher.inference.siammask_masks import InstanceMasker
from matcher.inference.verify import Verifier
from matcher.inference_config import PRECISIONS, DetectConfig, TrackConfig
from matcher.inference_prep import prepare_for_inference
from matcher.interface import Matcher
from matcher.model_config import net_geometry
from matcher.models.builders import (
    build_siam_mask_rcnn_net,
    build_siamese_net,
    build_siammask_net,
)
from matcher.recipes import load_recipe, recipe_from_dict
from matcher.registry import Registry
from matcher.siam_mask_rcnn_matcher import SiamMaskRCNNMatcher
from matcher.siamese_matcher import SiameseMatcher

logger = logging.getLogger(__name__)

FAMILIES: Registry = Registry("model family")


def _tracking(recipe: Recipe) -> TrackConfig:
    """The recipe's ``inference.track``, which every Siamese tracker family needs."""
    if recipe.inference.track is None:
        raise ConfigError(f"recipe {recipe.name!r}: family {recipe.family} needs inference.track")
    return recipe.inference.track


def _verifier(recipe: Recipe, device: torch.device) -> Verifier | None:
    """The recipe's match-mode verification stage (its trained embedder), if it has one."""
    cfg = recipe.inference.match
    if not cfg.verifier:
        return None
    return Verifier.load(
        cfg.verifier, weight=cfg.verifier_weight, context=cfg.verifier_context, device=device
    )


@FAMILIES.register("siamfc")
def build_siamfc(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamFC: correlation response, SiamFC tracker, response decoder."""
    _tracking(recipe)
    return SiameseMatcher(
        recipe=recipe,
        net=build_siamese_net(recipe.model),
        decoder=ResponseDecoder(),
        geometry=net_geometry(recipe.model),
        device=device,
        verifier=_verifier(recipe, device),
    )


@FAMILIES.register("siamrpn")
def build_siamrpn(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamRPN / DaSiamRPN / SiamRPN++: anchors, RPN trackers, anchor decoder."""
    _tracking(recipe)
    model = recipe.model
    if model.anchor is None:
        raise ConfigError(f"recipe {recipe.name!r}: family siamrpn needs model.anchor")
    shapes = anchor_shapes(model.stride, model.anchor.ratios, model.anchor.scales)
    return SiameseMatcher(
        recipe=recipe,
        net=build_siamese_net(model),
        decoder=AnchorDecoder(anchor_shapes=shapes, penalty_k=recipe.inference.match.penalty_k),
        geometry=net_geometry(model),
        device=device,
        verifier=_verifier(recipe, device),
    )


@FAMILIES.register("siammask")
def build_siammask(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamMask: the SiamRPN family plus a mask for every instance and tracked box."""
    model = recipe.model
    if model.anchor is None:
        raise ConfigError(f"recipe {recipe.name!r}: family siammask needs model.anchor")
    shapes = anchor_shapes(model.stride, model.anchor.ratios, model.anchor.scales)
    geometry = net_geometry(model)
    return SiameseMatcher(
        recipe=recipe,
        net=build_siammask_net(model),
        decoder=AnchorDecoder(anchor_shapes=shapes, penalty_k=recipe.inference.match.penalty_k),
        device=device,
        masker=InstanceMasker(geometry=geometry, threshold=_tracking(recipe).mask_threshold),
        geometry=geometry,
        verifier=_verifier(recipe, device),
    )


@FAMILIES.register("siamfcpp")
def build_siamfcpp(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamFC++: anchor-free point head, SiamFC++ trackers, point decoder."""
    _tracking(recipe)
    return SiameseMatcher(
        recipe=recipe,
        net=build_siamese_net(recipe.model),
        decoder=PointDecoder(penalty_k=recipe.inference.match.penalty_k),
        geometry=net_geometry(recipe.model),
        device=device,
        verifier=_verifier(recipe, device),
    )


@FAMILIES.register("siam_mask_rcnn")
def build_siam_mask_rcnn(recipe: Recipe, device: torch.device) -> SiamMaskRCNNMatcher:
    """Siamese Mask R-CNN: few-shot instance detection and segmentation, no tracking mode."""
    if recipe.inference.match.verifier:
        raise ConfigError(
            f"recipe {recipe.name!r}: inference.match.verifier is for the Siamese tracker "
            "families; siam_mask_rcnn matches by L1 distance of its own features"
        )
    detect = recipe.inference.detect or DetectConfig()
    net = build_siam_mask_rcnn_net(recipe.model, detect, nms_iou=recipe.inference.match.nms_iou)
    return SiamMaskRCNNMatcher(
        recipe=recipe,
        net=net,
        device=device,
        reference_context=recipe.model.detection.reference_context,
        mask_threshold=detect.mask_threshold,
    )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` -> a usable device.

    Raises:
        InvalidArgumentError: unknown device or CUDA requested without a GPU.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidArgumentError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"device {device!r} requested but no CUDA GPU is available")
    return dev


def build(
    recipe: str | os.PathLike | Recipe,
    *,
    device: str | torch.device = "cpu",
    overrides: list[str] | None = None,
) -> Matcher:
    """A matcher with freshly initialised (untrained) weights.

    Args:
        recipe: recipe name, YAML path or a loaded :class:`Recipe`; or the name of a
            classical baseline (``baseline_sift``, ``baseline_template``, see
            :mod:`matcher.baselines`), which has no weights and runs on the CPU.
        device: where the network runs.
        overrides: ``key=value`` recipe overrides (a baseline's parameters for baselines).
    """
    if isinstance(recipe, str) and recipe in BASELINES:
        resolve_device(device)
        return build_baseline(recipe, overrides=overrides)
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise ConfigError("overrides apply to recipe names or files, not to a loaded Recipe")
    return FAMILIES.get(recipe.family)(recipe, resolve_device(device))


def runs_untrained(m: Matcher, weights: str | os.PathLike | None) -> bool:
    """Whether a matcher loaded with ``weights`` has learnable parameters but no trained
    values (no weights given and none shipped): match results would be meaningless."""
    if weights is not None or shipped_weights(m.name) is not None:
        return False
    return any(p.numel() for p in m.net.parameters())


def load_trained(
    recipe: str | os.PathLike | Recipe | None = None,
    weights: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    overrides: list[str] | None = None,
    hint: str = "give its weights file",
    prepare: bool = True,
    precision: str | None = None,
) -> Matcher:
    """:func:`load`, refusing a matcher that would run untrained (:func:`runs_untrained`):
    what every user-facing path (service, CLI, evaluation) loads.

    Args:
        hint: how the caller's user gives weights (ends the error message).
        prepare: prepare the network for inference (the default; see :func:`load`). A
            process that compares its results with another's (e.g. spawned tracking
            workers) must load both alike: the two paths agree only to float rounding.

    Raises:
        ConfigError: the recipe has learnable parameters and neither ``weights`` nor
            shipped weights; and everything :func:`load` raises.
    """
    m = load(
        recipe, weights, device=device, overrides=overrides, prepare=prepare, precision=precision
    )
    if runs_untrained(m, weights):
        raise ConfigError(f"recipe {m.name!r} needs trained weights: {hint}")
    return m


def load(
    recipe: str | os.PathLike | Recipe | None = None,
    weights: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    overrides: list[str] | None = None,
    prepare: bool = False,
    precision: str | None = None,
) -> Matcher:
    """Build a matcher and load its weights.

    Args:
        recipe: recipe name (see ``configs/``), YAML path or :class:`Recipe`; may be
            ``None`` when ``weights`` is a siammatch checkpoint, which stores its recipe.
            A baseline name (``baseline_sift``, ``baseline_template``) gives a classical
            matcher (no weights).
        weights: a published checkpoint of the recipe's model (PySOT ``.pth``,
            siamfc-pytorch ``.pth``, DaSiamRPN ``.model``) or a siammatch checkpoint;
            ``None`` uses the weights shipped for the recipe (``weights/<recipe>.pth``, see
            :func:`shipped_weights`) when there are any, and random weights otherwise
            (useful only for tests and benchmarks).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        overrides: ``key=value`` recipe overrides.
        prepare: prepare the network for inference once loaded
            (:func:`matcher.inference_prep.prepare_for_inference`): batch norms folded
            into the convolutions before them and, for the Siamese trackers on the CPU,
            the convolutions packed for oneDNN (channels-last). Equal to float rounding
            and faster, but the network can then no longer be trained, and its state dict
            has no batch-norm entries (:func:`load_trained` prepares by default; this
            function does not, since training and checkpoint tools start from it). The
            verifier's embedder, if any, is prepared too, and both compute in the
            recipe's ``inference.precision`` (float32 unless it says ``bf16``; an
            unprepared network is float32 whatever it says).
        precision: ``"fp32"`` or ``"bf16"`` instead of the recipe's
            ``inference.precision`` (``None``: the recipe's).

    Returns:
        The matcher (``match``, ``match_many``, ``encode_reference``, ``tracker``).

    Raises:
        UnknownComponentError: unknown recipe or component.
        ConfigError: invalid recipe or override.
        InvalidArgumentError: an unknown ``precision``.
        CheckpointError: the weights file is unreadable, unsafe or does not fit.
    """
    if precision is not None and precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if isinstance(recipe, str) and recipe in BASELINES:
        if weights is not None:
            raise InvalidArgumentError(f"{recipe} is a classical matcher; it takes no weights")
        return build(recipe, device=device, overrides=overrides)
    if recipe is None:
        if weights is None:
            raise InvalidArgumentError("give a recipe, a siammatch checkpoint, or both")
        stored = read_checkpoint(weights).recipe
        if stored is None:
            raise CheckpointError(
                f"{os.fspath(weights)} does not store a recipe (it is not a siammatch "
                "checkpoint); name the recipe it belongs to"
            )
        recipe_obj = recipe_from_dict(stored)
        if overrides:
            raise ConfigError("overrides need a recipe name or file")
    elif isinstance(recipe, Recipe):
        recipe_obj = recipe
    else:
        recipe_obj = load_recipe(recipe, overrides)
    matcher = build(recipe_obj, device=device)
    if weights is None and (shipped := shipped_weights(recipe_obj.name)) is not None:
        logger.info("recipe %s: using the shipped weights %s", recipe_obj.name, shipped)
        weights = shipped
    if weights is None:
        if any(p.numel() for p in matcher.net.parameters()):
            logger.warning("recipe %s: no weights given, the network is untrained", recipe_obj.name)
    else:
        load_weights(
            matcher.net,
            weights,
            layout_name=recipe_obj.checkpoint_layout,
            recipe_name=recipe_obj.name,
        )
        matcher.net.to(matcher.device).eval()
    if prepare:
        precision = precision or recipe_obj.inference.precision
        prepare_for_inference(matcher.net, precision=precision)
        verifier = getattr(matcher, "verifier", None)
        if verifier is not None:  # its embedder is loaded for inference only
            prepare_for_inference(verifier.embedder, precision=precision)
    return matcher
