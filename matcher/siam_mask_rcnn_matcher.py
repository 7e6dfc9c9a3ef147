"""The matcher of the detection family: Siamese Mask R-CNN behind the public matcher API.

It has the face of :class:`~matcher.siamese_matcher.SiameseMatcher` (``name``,
``encode_reference``, ``match``, ``match_many``) and no tracking mode. A reference is
cropped square around its box (:func:`~matcher.crops.reference_crop`)
and encoded to one vector per pyramid level; several photos of one product (k-shot) are
averaged. A scene is resized to the recipe's detection size and encoded once per call,
however many references it is matched against; each instance comes with its own mask
(``HxW`` bool in scene coordinates) and outline polygon.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matcher.config import Recipe
from matcher.crops import reference_crop
from matcher.errors import InvalidArgumentError, NoTrackingModeError
from matcher.images import ImageLike, load_image
from matcher.interface import RecipeMatcher, resolve_match_limits
from matcher.mask_codec import largest_contour_polygon
from matcher.models.siam_mask_rcnn import SiamMaskRCNN, paste_masks
from matcher.structures import Instance, MatchResult, Reference

logger = logging.getLogger(__name__)

#: Most instances a single call may ask for (as for the Siamese matchers).
#: References matched against the scene in one pass of the heads (bounds the memory).
REFERENCES_PER_PASS = 8


@dataclass(frozen=True, eq=False)
class DetectionReferenceFeatures:
    """A reference encoded once for repeated matching.

    Attributes:
        vectors: pyramid level -> ``(1, C)`` reference vector (shots averaged), on the
            matcher's device.
        crops: ``(K, S, S, 3)`` uint8 RGB, the square crops of the ``K`` shots.
        recipe: recipe name of the matcher that made it.
        reference_id: the (first) reference's id.
    """

    vectors: dict[str, torch.Tensor]
    crops: np.ndarray
    recipe: str
    reference_id: str | None = None


class SiamMaskRCNNMatcher(RecipeMatcher):
    """Few-shot instance detection and segmentation with one Siamese Mask R-CNN recipe.

    Args:
        recipe: the resolved recipe (``inference.match`` gives the defaults of ``match``).
        net: the network (its weights already loaded).
        device: where the network runs.
        reference_context: margin around reference boxes, fraction of their sides.
        mask_threshold: mask probability above which a pixel belongs to an instance.
    """

    def __init__(
        self,
        *,
        recipe: Recipe,
        net: SiamMaskRCNN,
        device: torch.device,
        reference_context: float,
        mask_threshold: float,
    ) -> None:
        self.recipe = recipe
        self.device = device
        self.net = net.to(device).eval()
        self.reference_context = reference_context
        self.mask_threshold = mask_threshold

    @property
    def kind(self) -> str:
        """Always ``"detector"``."""
        return "detector"

    # -- references ----------------------------------------------------------------------

    def encode_reference(
        self, reference: Reference | Sequence[Reference]
    ) -> DetectionReferenceFeatures:
        """Crop and encode a reference once, for any number of ``match`` calls.

        Args:
            reference: a :class:`Reference`, or several photos of the same product
                (k-shot: their vectors are averaged).

        Raises:
            InvalidArgumentError: not a reference, or an empty sequence.
        """
        shots = [reference] if isinstance(reference, Reference) else list(reference)
        if not shots:
            raise InvalidArgumentError("k-shot encoding needs at least one reference")
        for shot in shots:
            if not isinstance(shot, Reference):
                raise InvalidArgumentError(
                    f"expected a matcher.Reference, got {type(shot).__name__}; build one "
                    "with Reference.from_image(image, box)"
                )
        size = self.net.reference_size
        crops = np.stack(
            [
                reference_crop(s.image, s.box, size=size, context=self.reference_context)
                for s in shots
            ]
        )
        images = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            vectors = self.net.encode_reference(images[None])
        return DetectionReferenceFeatures(
            vectors=dict(vectors), crops=crops, recipe=self.name, reference_id=shots[0].id
        )

    def _features(
        self, ref: Reference | Sequence[Reference] | DetectionReferenceFeatures
    ) -> DetectionReferenceFeatures:
        if isinstance(ref, DetectionReferenceFeatures):
            if ref.recipe != self.name:
                raise InvalidArgumentError(
                    f"reference was encoded by {ref.recipe!r}, not by this {self.name!r} matcher"
                )
            return ref
        return self.encode_reference(ref)

    # -- match mode ----------------------------------------------------------------------

    def match_many(
        self,
        references: Sequence[Reference | Sequence[Reference] | DetectionReferenceFeatures],
        scene: ImageLike,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
    ) -> list[MatchResult]:
        """:meth:`match` for several references with one pass of the scene's backbone.

        A reference may be a :class:`Reference`, several photos of one product (k-shot) or
        an :meth:`encode_reference` output; every instance found comes with its ``HxW``
        bool mask in scene coordinates and its outline polygon.

        Returns:
            One :class:`MatchResult` per reference, in order.
        """
        limit, threshold = self._limits(max_instances, score_threshold)
        if not references:
            return []
        feats = [self._features(r) for r in references]
        image = load_image(scene)
        pixels = torch.from_numpy(np.require(image, requirements=["C", "W"]))
        tensor = pixels.to(self.device).permute(2, 0, 1).float() / 255.0
        results: list[MatchResult] = []
        with torch.no_grad():
            encoded, _ = self.net.encode_scene([tensor])
            for start in range(0, len(feats), REFERENCES_PER_PASS):
                chunk = feats[start : start + REFERENCES_PER_PASS]
                vectors = {
                    level: torch.cat([f.vectors[level] for f in chunk])
                    for level in chunk[0].vectors
                }
                detections = self.net.detect(encoded, vectors)
                for f, found in zip(chunk, detections, strict=True):
                    instances = self._instances(found, image.shape[:2], limit, threshold)
                    results.append(
                        MatchResult(
                            instances=instances,
                            scene_size=(image.shape[0], image.shape[1]),
                            reference_id=f.reference_id,
                        )
                    )
        return results

    def _instances(
        self,
        found: dict[str, torch.Tensor],
        scene_size: tuple[int, int],
        limit: int,
        threshold: float,
    ) -> tuple[Instance, ...]:
        """Detections of one reference (sorted by score) -> capped, thresholded instances."""
        height, width = scene_size
        scores = found["scores"].float().cpu().numpy()
        keep = np.flatnonzero(scores >= threshold)[:limit]
        kept = torch.from_numpy(keep).to(found["boxes"].device)
        boxes_t = found["boxes"][kept].float()
        probs = paste_masks(found["masks"][kept].float(), boxes_t, (height, width))
        masks = (probs > self.mask_threshold).cpu().numpy()
        boxes = boxes_t.cpu().numpy()
        out = []
        for i, k in enumerate(keep):
            x0, x1 = np.clip(boxes[i, [0, 2]], 0.0, float(width))
            y0, y1 = np.clip(boxes[i, [1, 3]], 0.0, float(height))
            if x1 <= x0 or y1 <= y0:
                continue
            poly = largest_contour_polygon(masks[i])
            if poly is None:
                poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            out.append(
                Instance(
                    box=(float(x0), float(y0), float(x1), float(y1)),
                    score=float(scores[k]),
                    mask=masks[i],
                    polygon=tuple((float(px), float(py)) for px, py in poly),
                )
            )
        return tuple(out)

    def _limits(
        self, max_instances: int | None, score_threshold: float | None
    ) -> tuple[int, float]:
        cfg = self.recipe.inference.match
        return resolve_match_limits(
            max_instances,
            score_threshold,
            default_max_instances=cfg.max_instances,
            default_threshold=cfg.score_threshold,
        )

    # -- no tracking mode ----------------------------------------------------------------

    def tracker(self) -> None:
        """The detector has no tracking mode.

        Raises:
            NoTrackingModeError: always.
        """
        raise NoTrackingModeError(
            f"{self.name} is a detector (Siamese Mask R-CNN) without a tracking mode; "
            "track with a Siamese tracker recipe such as siamrpnpp_r50"
        )
