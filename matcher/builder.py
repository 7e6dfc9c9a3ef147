"""From a recipe (and weights) to a ready matcher: ``matcher.build`` and ``matcher.load``.

One builder per family, registered in :data:`FAMILIES`, turns a :class:`Recipe` into a
matcher object; :func:`load` adds the weights. Builders and entry points are the only code
that reads recipes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from matcher.checkpoints import load_weights, read_checkpoint
from matcher.config import Recipe, score_size
from matcher.errors import CheckpointError, ConfigError, InvalidArgumentError
from matcher.inference.anchors import anchor_shapes
from matcher.inference.decode import AnchorDecoder, ResponseDecoder
from matcher.inference.instance_masks import InstanceMasker, MaskGeometry
from matcher.inference.point_decoder import PointDecoder
from matcher.models.builders import build_siamese_net, build_siammask_net
from matcher.recipes import load_recipe, recipe_from_dict
from matcher.registry import Registry
from matcher.siamese_matcher import SiameseMatcher

logger = logging.getLogger(__name__)

FAMILIES: Registry = Registry("model family")


@FAMILIES.register("siamfc")
def build_siamfc(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamFC: correlation response, SiamFC tracker, response decoder."""
    return SiameseMatcher(
        recipe=recipe,
        net=build_siamese_net(recipe.model),
        decoder=ResponseDecoder(),
        device=device,
    )


@FAMILIES.register("siamrpn")
def build_siamrpn(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamRPN / DaSiamRPN / SiamRPN++: anchors, RPN trackers, anchor decoder."""
    model = recipe.model
    if model.anchor is None:
        raise ConfigError(f"recipe {recipe.name!r}: family siamrpn needs model.anchor")
    shapes = anchor_shapes(model.stride, model.anchor.ratios, model.anchor.scales)
    return SiameseMatcher(
        recipe=recipe,
        net=build_siamese_net(model),
        decoder=AnchorDecoder(anchor_shapes=shapes, penalty_k=recipe.inference.match.penalty_k),
        device=device,
    )


@FAMILIES.register("siammask")
def build_siammask(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamMask: the SiamRPN family plus a mask for every instance and tracked box."""
    model = recipe.model
    if model.anchor is None:
        raise ConfigError(f"recipe {recipe.name!r}: family siammask needs model.anchor")
    shapes = anchor_shapes(model.stride, model.anchor.ratios, model.anchor.scales)
    geometry = MaskGeometry(
        exemplar_size=model.exemplar_size,
        instance_size=model.instance_size,
        stride=model.stride,
        base_size=model.base_size,
        context_amount=model.context_amount,
        score_size=score_size(model, model.instance_size),
        num_anchors=len(shapes),
    )
    return SiameseMatcher(
        recipe=recipe,
        net=build_siammask_net(model),
        decoder=AnchorDecoder(anchor_shapes=shapes, penalty_k=recipe.inference.match.penalty_k),
        device=device,
        masker=InstanceMasker(geometry=geometry, threshold=recipe.inference.track.mask_threshold),
    )


@FAMILIES.register("siamfcpp")
def build_siamfcpp(recipe: Recipe, device: torch.device) -> SiameseMatcher:
    """SiamFC++: anchor-free point head, SiamFC++ trackers, point decoder."""
    return SiameseMatcher(
        recipe=recipe,
        net=build_siamese_net(recipe.model),
        decoder=PointDecoder(penalty_k=recipe.inference.match.penalty_k),
        device=device,
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
) -> Any:
    """A matcher with freshly initialised (untrained) weights.

    Args:
        recipe: recipe name, YAML path or a loaded :class:`Recipe`.
        device: where the network runs.
        overrides: ``key=value`` recipe overrides.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise ConfigError("overrides apply to recipe names or files, not to a loaded Recipe")
    return FAMILIES.get(recipe.family)(recipe, resolve_device(device))


def load(
    recipe: str | os.PathLike | Recipe | None = None,
    weights: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    overrides: list[str] | None = None,
) -> Any:
    """Build a matcher and load its weights.

    Args:
        recipe: recipe name (see ``configs/``), YAML path or :class:`Recipe`; may be
            ``None`` when ``weights`` is a siammatch checkpoint, which stores its recipe.
        weights: a published checkpoint of the recipe's model (PySOT ``.pth``,
            siamfc-pytorch ``.pth``, DaSiamRPN ``.model``) or a siammatch checkpoint;
            ``None`` keeps random weights (useful only for tests and benchmarks).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        overrides: ``key=value`` recipe overrides.

    Returns:
        The matcher (``match``, ``match_many``, ``encode_reference``, ``tracker``).

    Raises:
        UnknownComponentError: unknown recipe or component.
        ConfigError: invalid recipe or override.
        CheckpointError: the weights file is unreadable, unsafe or does not fit.
    """
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
    if weights is None:
        if any(p.numel() for p in matcher.net.parameters()):
            logger.warning("recipe %s: no weights given, the network is untrained", recipe_obj.name)
        return matcher
    load_weights(
        matcher.net,
        weights,
        layout_name=recipe_obj.checkpoint_layout,
        recipe_name=recipe_obj.name,
    )
    matcher.net.to(matcher.device).eval()
    return matcher
