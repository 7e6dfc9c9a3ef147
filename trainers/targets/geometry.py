"""Training geometry: where score cells and anchors sit in the search crop.

:class:`TargetGeometry` holds every number target assignment needs (crop sizes, stride,
score-map size and offset, anchor shapes, mask size) and :func:`target_geometry` is the one
function that derives them from a recipe. Score cell ``j`` (row or column) is centred on
search-crop pixel ``offset + stride * j``; anchor ``a`` of cell ``(row, col)`` is the box of
size ``anchor_shapes[a]`` centred there (PySOT's ``AnchorTarget`` layout).

Shape shorthand / naming: ``B`` pairs per batch, ``A`` anchors per cell, ``S`` the score-map
side, ``X`` the search-crop side, ``M`` the side of the mask logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from matcher.config import Recipe
from matcher.errors import ConfigError
from matcher.inference.anchors import anchor_shapes as make_anchor_shapes
from matcher.inference.point_decoder import cell_centers
from matcher.model_config import net_geometry

# Side of the refine module's mask logits (SiamMask-sharp's ``out_size``), fixed by its
# upsampling chain 15 -> 31 -> 61 -> 127 (matcher.models.siammask.Refine).
REFINE_MASK_SIZE = 127


@dataclass(frozen=True)
class TargetGeometry:
    """Geometry of one training configuration.

    Attributes:
        search_size: search-crop side ``X`` in pixels.
        exemplar_size: template-crop side in pixels (also the side of a cell's mask window).
        stride: score-cell spacing in search pixels.
        score_size: score-map side ``S``.
        offset: search-crop coordinate of score cell 0's centre (cell ``j`` at
            ``offset + stride * j``).
        anchor_shapes: ``(A, 2)`` float32 anchor ``(w, h)`` in pixels, or ``None`` for
            anchor-free families.
        base_size: PySOT ``BASE_SIZE``; the mask window of cell ``(row, col)`` starts at
            ``((col - base_size / 2) * stride, (row - base_size / 2) * stride)``.
        mask_size: side ``M`` of the mask logits the network returns (127 with refine, the
            mask head's 63 without), or ``None`` without a mask branch.

    Raises:
        ConfigError: a non-positive size, or anchor shapes not ``(A, 2)``.
    """

    search_size: int
    exemplar_size: int
    stride: int
    score_size: int
    offset: float
    anchor_shapes: np.ndarray | None = field(default=None, compare=False)
    base_size: int = 0
    mask_size: int | None = None

    def __post_init__(self) -> None:
        if min(self.search_size, self.exemplar_size, self.stride, self.score_size) < 1:
            raise ConfigError(f"target geometry needs positive sizes, got {self}")
        if self.anchor_shapes is not None and (
            self.anchor_shapes.ndim != 2 or self.anchor_shapes.shape[1] != 2
        ):
            raise ConfigError(
                f"anchor_shapes must be (A, 2), got {tuple(self.anchor_shapes.shape)}"
            )
        if self.mask_size is not None and self.mask_size < 1:
            raise ConfigError(f"mask_size must be positive, got {self.mask_size}")

    @property
    def num_anchors(self) -> int:
        """Anchors per cell ``A`` (1 when anchor-free)."""
        return 1 if self.anchor_shapes is None else len(self.anchor_shapes)


def target_geometry(recipe: Recipe) -> TargetGeometry:
    """Derive the training geometry of a recipe.

    The search side is ``recipe.train.search_size`` (``model.instance_size`` when unset);
    the score size is the network geometry's
    (:meth:`matcher.model_config.NetGeometry.score_size_at`) and the offset centres the
    score map on the crop: ``(X - 1 - (S - 1) * stride) / 2`` (equal to the geometry's
    ``offset`` at the model's own instance size).

    Args:
        recipe: a loaded recipe.

    Returns:
        The geometry; anchors when ``model.anchor`` is set, a mask size when
        ``model.mask`` is.

    Raises:
        ConfigError: the search crop is smaller than the template, or the family needs
            anchors (``siamrpn``, ``siammask``) or a mask branch (``siammask``) the model
            lacks.
    """
    model = recipe.model
    net = net_geometry(model)
    search = recipe.train.search_size or net.instance_size
    size = net.score_size_at(search)
    if search < net.exemplar_size or size < 1:
        raise ConfigError(
            f"recipe {recipe.name!r}: train.search_size {search} gives no score map "
            f"(exemplar {model.exemplar_size}, stride {model.stride})"
        )
    if recipe.family in ("siamrpn", "siammask") and model.anchor is None:
        raise ConfigError(f"recipe {recipe.name!r}: family {recipe.family} needs model.anchor")
    if recipe.family == "siammask" and model.mask is None:
        raise ConfigError(f"recipe {recipe.name!r}: family siammask needs model.mask")
    shapes = None
    if model.anchor is not None:
        shapes = make_anchor_shapes(model.stride, model.anchor.ratios, model.anchor.scales)
    mask_size = None
    if model.mask is not None:
        mask_size = REFINE_MASK_SIZE if model.mask.refine else model.mask.mask_size
    return TargetGeometry(
        search_size=search,
        exemplar_size=net.exemplar_size,
        stride=net.stride,
        score_size=size,
        offset=(search - 1 - (size - 1) * net.stride) / 2,
        anchor_shapes=shapes,
        base_size=net.base_size,
        mask_size=mask_size,
    )


def score_cell_centers(geometry: TargetGeometry, device: torch.device) -> torch.Tensor:
    """``(S,)`` float32 search-crop coordinates of the cell centres along one axis."""
    return cell_centers(geometry.score_size, offset=geometry.offset, stride=geometry.stride).to(
        device
    )


def anchor_boxes(geometry: TargetGeometry, device: torch.device) -> torch.Tensor:
    """Every anchor of the score map.

    Args:
        geometry: must have ``anchor_shapes``.
        device: where to build them.

    Returns:
        ``(A, S, S, 4)`` float32 xyxy in search-crop pixels, indexed ``[a, row, col]``.

    Raises:
        ConfigError: the geometry has no anchors.
    """
    if geometry.anchor_shapes is None:
        raise ConfigError("anchor targets need a geometry with anchor_shapes")
    centers = score_cell_centers(geometry, device)
    s = geometry.score_size
    cx = centers[None, None, :].expand(1, s, s)
    cy = centers[None, :, None].expand(1, s, s)
    shapes = torch.as_tensor(geometry.anchor_shapes, dtype=torch.float32, device=device)
    half_w = shapes[:, 0, None, None] / 2
    half_h = shapes[:, 1, None, None] / 2
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)
