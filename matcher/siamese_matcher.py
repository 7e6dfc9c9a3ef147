"""The matcher a user holds: a Siamese network with its recipe, in match or tracking mode.

``encode_reference`` crops the reference like a tracker's template (the product box plus
context, padded with the reference's mean colour) and returns its head encoding, which
``match`` and ``match_many`` reuse; ``tracker()`` returns a fresh tracker of the family
that shares the same network.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from matcher.config import Recipe, score_offset
from matcher.errors import InvalidArgumentError
from matcher.images import ImageLike, load_image
from matcher.inference.decode import MatchDecoder, ReferenceGeometry
from matcher.inference.match import SearchParams, search_scene, to_instances
from matcher.inference.pyramid import Geometry
from matcher.inference.tracking import TRACKERS, Tracker, crops_to_tensor, to_model_order
from matcher.structures import MatchResult, Reference

logger = logging.getLogger(__name__)

#: Most instances a single call may ask for.
MAX_INSTANCES_LIMIT = 100


@dataclass(frozen=True, eq=False)
class ReferenceFeatures:
    """A reference encoded once for repeated matching.

    Attributes:
        template: the head's template encoding (tensors with batch 1, on the device).
        size_in_template: the product's ``(w, h)`` in template pixels.
        z_crop: the template crop, ``(Z, Z, 3)`` uint8 in the network's channel order.
        recipe: recipe name of the matcher that made it.
        reference_id: the reference's id.
    """

    template: list[torch.Tensor]
    size_in_template: tuple[float, float]
    z_crop: np.ndarray
    recipe: str
    reference_id: str | None = None


def template_crop(
    image: np.ndarray,
    box: tuple[float, float, float, float],
    *,
    exemplar_size: int,
    context_amount: float,
) -> tuple[np.ndarray, float]:
    """Square crop of the box plus context, resized to ``exemplar_size`` (area averaging).

    Args:
        image: ``(H, W, 3)`` uint8.
        box: ``(x0, y0, x1, y1)``.
        exemplar_size: output side.
        context_amount: context as a fraction of ``w + h``.

    Returns:
        ``(crop, scale)`` where ``scale`` is template pixels per image pixel.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ctx = context_amount * (w + h)
    side = math.sqrt((w + ctx) * (h + ctx))
    scale = exemplar_size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # Map the square [cx - side/2, cx + side/2] onto [0, exemplar_size] (pixel centres).
    matrix = np.array(
        [
            [scale, 0.0, -(cx - side / 2) * scale - 0.5 + 0.5 * scale],
            [0.0, scale, -(cy - side / 2) * scale - 0.5 + 0.5 * scale],
        ],
        dtype=np.float64,
    )
    fill = tuple(float(v) for v in image.reshape(-1, 3).mean(axis=0))
    if scale < 1.0:
        # Shrink with area averaging first so small templates do not alias.
        factor = max(1, int(1.0 / scale))
        if factor > 1:
            small = cv2.resize(
                image,
                (max(1, image.shape[1] // factor), max(1, image.shape[0] // factor)),
                interpolation=cv2.INTER_AREA,
            )
            sx = image.shape[1] / small.shape[1]
            sy = image.shape[0] / small.shape[0]
            pre = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
            # compose: template <- image <- small
            full = np.vstack([matrix, [0, 0, 1]]) @ np.vstack([pre, [0, 0, 1]])
            matrix, image = full[:2], small
    crop = cv2.warpAffine(
        image,
        matrix,
        (exemplar_size, exemplar_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    return crop, scale


class SiameseMatcher:
    """Match mode and tracking mode of one Siamese recipe.

    Args:
        recipe: the resolved recipe.
        net: the network (its weights already loaded).
        decoder: the family's match-mode decoder.
        device: where the network runs.
    """

    def __init__(
        self, *, recipe: Recipe, net: torch.nn.Module, decoder: MatchDecoder, device: torch.device
    ) -> None:
        self.recipe = recipe
        self.device = device
        self.net = net.to(device).eval()
        self.decoder = decoder
        model = recipe.model
        self.geometry = Geometry(
            exemplar_size=model.exemplar_size,
            instance_size=model.instance_size,
            stride=model.stride,
            offset=score_offset(model),
        )

    @property
    def name(self) -> str:
        """The recipe name."""
        return self.recipe.name

    # -- references ----------------------------------------------------------------------

    def encode_reference(self, reference: Reference) -> ReferenceFeatures:
        """Crop and encode a reference once, for any number of ``match`` calls."""
        if not isinstance(reference, Reference):
            raise InvalidArgumentError(
                f"expected a matcher.Reference, got {type(reference).__name__}; build one "
                "with Reference.from_image(image, box)"
            )
        model = self.recipe.model
        image = to_model_order(reference.image, model.input_format)
        crop, scale = template_crop(
            image,
            reference.box,
            exemplar_size=model.exemplar_size,
            context_amount=model.context_amount,
        )
        with torch.no_grad():
            template = self.net.encode_template(crops_to_tensor(crop, self.device))
        w, h = reference.size
        return ReferenceFeatures(
            template=template,
            size_in_template=(w * scale, h * scale),
            z_crop=crop,
            recipe=self.name,
            reference_id=reference.id,
        )

    def _features(self, ref: Reference | ReferenceFeatures) -> ReferenceFeatures:
        if isinstance(ref, ReferenceFeatures):
            if ref.recipe != self.name:
                raise InvalidArgumentError(
                    f"reference was encoded by {ref.recipe!r}, not by this {self.name!r} matcher"
                )
            return ref
        return self.encode_reference(ref)

    # -- match mode ----------------------------------------------------------------------

    def match(
        self,
        reference: Reference | ReferenceFeatures,
        scene: ImageLike,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
    ) -> MatchResult:
        """Find every instance of ``reference`` in ``scene``.

        Args:
            reference: a :class:`Reference` or its :meth:`encode_reference` output.
            scene: any image :func:`matcher.images.load_image` reads.
            max_instances: cap on returned instances (recipe default if ``None``).
            score_threshold: minimum score (recipe default if ``None``).

        Returns:
            The instances, best first, boxes in scene pixels.

        Raises:
            InvalidImageError: the scene cannot be read.
            InvalidArgumentError: ``max_instances`` or ``score_threshold`` out of range.
        """
        return self.match_many(
            [reference], scene, max_instances=max_instances, score_threshold=score_threshold
        )[0]

    def match_many(
        self,
        references: Sequence[Reference | ReferenceFeatures],
        scene: ImageLike,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
    ) -> list[MatchResult]:
        """:meth:`match` for several references with one pass of the scene's backbone.

        Returns:
            One :class:`MatchResult` per reference, in order.
        """
        params = self._search_params(max_instances, score_threshold)
        if not references:
            return []
        feats = [self._features(r) for r in references]
        image = load_image(scene)
        scene_model = to_model_order(image, self.recipe.model.input_format)
        results = search_scene(
            self.net,
            [f.template for f in feats],
            [ReferenceGeometry(*f.size_in_template) for f in feats],
            scene_model,
            geometry=self.geometry,
            decoder=self.decoder,
            params=params,
            device=self.device,
        )
        return [
            MatchResult(
                instances=to_instances(cands),
                scene_size=(image.shape[0], image.shape[1]),
                reference_id=f.reference_id,
            )
            for f, cands in zip(feats, results, strict=True)
        ]

    def _search_params(
        self, max_instances: int | None, score_threshold: float | None
    ) -> SearchParams:
        cfg = self.recipe.inference.match
        if max_instances is None:
            max_instances = cfg.max_instances
        if score_threshold is None:
            score_threshold = cfg.score_threshold
        if isinstance(max_instances, bool) or not isinstance(max_instances, int | np.integer):
            raise InvalidArgumentError(f"max_instances must be an integer, got {max_instances!r}")
        if not 1 <= max_instances <= MAX_INSTANCES_LIMIT:
            raise InvalidArgumentError(
                f"max_instances must be between 1 and {MAX_INSTANCES_LIMIT}, got {max_instances}"
            )
        try:
            score_threshold = float(score_threshold)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"score_threshold must be a number, got {score_threshold!r}"
            ) from None
        if not (math.isfinite(score_threshold) and 0.0 <= score_threshold <= 1.0):
            raise InvalidArgumentError(
                f"score_threshold must be within [0, 1], got {score_threshold}"
            )
        return SearchParams(
            score_threshold=score_threshold,
            max_instances=int(max_instances),
            nms_iou=cfg.nms_iou,
            min_object_fraction=cfg.min_object_fraction,
            max_object_fraction=cfg.max_object_fraction,
            scale_step=cfg.scale_step,
            max_upscale=cfg.max_upscale,
            working_size=cfg.working_size,
            pre_nms_top_k=cfg.pre_nms_top_k,
            box_voting_iou=cfg.box_voting_iou,
        )

    # -- tracking mode -------------------------------------------------------------------

    def tracker(self) -> Tracker:
        """A new tracker of this recipe's family sharing the network."""
        factory = TRACKERS.get(self.recipe.inference.track.tracker)
        return factory(
            net=self.net,
            model_cfg=self.recipe.model,
            track_cfg=self.recipe.inference.track,
            device=self.device,
        )
