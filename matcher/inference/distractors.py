"""Distractor awareness (DaSiamRPN): using look-alikes in the scene to sharpen decisions.

DaSiamRPN's observation is that a Siamese network scores every object resembling the
target highly, and that those objects — distractors — can be told apart by comparing
candidates with them as well as with the target. Two uses here:

* **Match mode** (:func:`rescore_by_distractors`): on a shelf of near-identical products,
  each candidate is also scored against every *other* candidate (cropped from the scene as
  a template). A candidate that looks more like another candidate than like the reference
  (``b_j > a_j``) is most likely one facing of a look-alike repeated on the shelf, and is
  down-weighted by ``weight * (b_j - a_j)``; the true product looks most like the reference.
* **Tracking mode** (:class:`DistractorMemory`): secondary peaks of the search region are
  remembered as distractor templates (weights decaying over frames), and each candidate's
  score is reduced by the weighted mean of its similarity to them (DaSiamRPN eq. 5 in
  score space): a remembered distractor matches its own template best and is suppressed,
  the target is not.

Similarities come from the network itself on tracker-style crops, through
:func:`candidate_probability`, which reads any family's raw outputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou

from matcher.crops import centre_peak, search_crops, template_crop
from matcher.inference.tracking import crops_to_tensor
from matcher.model_config import NetGeometry


def candidate_probability(outputs: dict[str, torch.Tensor]) -> np.ndarray:
    """Per-cell "the template is here" probability from any family's raw head outputs.

    * RPN (``cls`` with ``2A`` channels, background first): softmax foreground, max over
      anchors;
    * SiamFC (``response``): sigmoid;
    * SiamFC++ (``cls`` and ``ctr`` with one channel each): ``sigmoid(cls) * sigmoid(ctr)``.

    Returns:
        ``(N, S, S)`` float32.
    """
    if "response" in outputs:
        return torch.sigmoid(outputs["response"][:, 0]).float().cpu().numpy()
    cls = outputs["cls"].float()
    if "ctr" in outputs and cls.shape[1] == 1:
        prob = torch.sigmoid(cls[:, 0]) * torch.sigmoid(outputs["ctr"][:, 0].float())
        return prob.cpu().numpy()
    n, two_a, h, w = cls.shape
    fg = torch.softmax(cls.reshape(n, 2, two_a // 2, h, w), dim=1)[:, 1]
    return fg.max(dim=1).values.cpu().numpy()


def similarity_matrix(
    net: torch.nn.Module,
    templates: list[torch.Tensor],
    scene: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
    *,
    geometry: NetGeometry,
    device: torch.device,
    radius: int = 2,
) -> np.ndarray:
    """How strongly each template fires on each box: the most confident cell near the centre
    of a tracker-style crop around the box.

    Args:
        net: the network.
        templates: a template encoding holding ``K`` templates.
        scene: ``(H, W, 3)`` uint8 in the network's channel order.
        boxes: ``N`` boxes (xyxy, scene pixels).
        geometry: crop geometry.
        device: where the network runs.
        radius: cells around the crop centre searched.

    Returns:
        ``(K, N)`` probabilities.
    """
    crops, _ = search_crops(
        scene,
        boxes,
        exemplar_size=geometry.exemplar_size,
        instance_size=geometry.instance_size,
        context_amount=geometry.context_amount,
    )
    k = templates[0].shape[0]
    out = np.zeros((k, len(boxes)), np.float32)
    with torch.no_grad():
        xk = net.encode_search(crops_to_tensor(crops, device))
        for j in range(len(boxes)):
            outputs = net.correlate(templates, [t[j : j + 1] for t in xk])
            out[:, j] = centre_peak(candidate_probability(outputs), radius)[0]
    return out


def encode_box_templates(
    net: torch.nn.Module,
    scene: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
    *,
    geometry: NetGeometry,
    device: torch.device,
) -> list[torch.Tensor]:
    """Template encodings of boxes cut from a scene, one per box (batch ``N``)."""
    crops = [
        template_crop(
            scene, box, exemplar_size=geometry.exemplar_size, context_amount=geometry.context_amount
        )[0]
        for box in boxes
    ]
    with torch.no_grad():
        return net.encode_template(crops_to_tensor(crops, device))


def rescore_by_distractors(
    scores: np.ndarray,
    reference_similarity: np.ndarray,
    cross_similarity: np.ndarray,
    boxes: np.ndarray,
    *,
    weight: float,
    overlap: float = 0.3,
) -> np.ndarray:
    """Down-weight candidates that resemble another candidate more than the reference.

    Args:
        scores: ``(N,)`` match scores.
        reference_similarity: ``(N,)`` ``a_j``, the reference template on candidate ``j``.
        cross_similarity: ``(N, N)``, ``[i, j]`` candidate ``i``'s template on candidate ``j``.
        boxes: ``(N, 4)`` xyxy, to ignore a candidate's overlapping near-duplicates.
        weight: strength of the down-weighting.
        overlap: candidates overlapping by more than this IoU are not each other's
            distractors.

    Returns:
        ``(N,)`` re-scored values ``scores - weight * max(0, b - a)`` with
        ``b_j = max_{i != j} cross[i, j]``.
    """
    n = len(scores)
    if n < 2:
        return scores.astype(np.float32)
    ious = box_iou(
        torch.as_tensor(boxes, dtype=torch.float32), torch.as_tensor(boxes, dtype=torch.float32)
    ).numpy()
    allowed = (ious <= overlap) & ~np.eye(n, dtype=bool)
    cross = np.where(allowed, cross_similarity, 0.0)
    b = cross.max(axis=0)
    return (scores - weight * np.maximum(0.0, b - reference_similarity)).astype(np.float32)


class DistractorMemory:
    """Distractor templates remembered across tracked frames, with decaying weights.

    Args:
        capacity: most templates kept (the lowest-weighted are dropped).
        decay: each frame, older weights are multiplied by ``1 - decay``.
        min_weight: templates whose weight falls below this are forgotten.
    """

    def __init__(self, *, capacity: int = 8, decay: float = 0.1, min_weight: float = 0.05):
        self.capacity = capacity
        self.decay = decay
        self.min_weight = min_weight
        self.templates: list[torch.Tensor] | None = None
        self.weights = np.zeros((0,), np.float32)

    def __len__(self) -> int:
        return len(self.weights)

    def age(self) -> None:
        """Decay every weight by one frame and forget the faded templates."""
        self.weights = self.weights * (1.0 - self.decay)
        self._keep(self.weights >= self.min_weight)

    def add(self, templates: list[torch.Tensor], weights: np.ndarray) -> None:
        """Remember new distractor templates (batch ``M``) with their weights."""
        if len(weights) == 0:
            return
        if self.templates is None or len(self) == 0:
            self.templates = [t.detach() for t in templates]
            self.weights = np.asarray(weights, np.float32)
        else:
            self.templates = [
                torch.cat([old, new.detach()])
                for old, new in zip(self.templates, templates, strict=True)
            ]
            self.weights = np.concatenate([self.weights, np.asarray(weights, np.float32)])
        if len(self) > self.capacity:
            order = np.argsort(-self.weights, kind="stable")[: self.capacity]
            mask = np.zeros(len(self), bool)
            mask[order] = True
            self._keep(mask)

    def _keep(self, mask: np.ndarray) -> None:
        if self.templates is None:
            return
        index = torch.as_tensor(np.nonzero(mask)[0], dtype=torch.long)
        self.templates = [t[index.to(t.device)] for t in self.templates]
        self.weights = self.weights[mask]


def weighted_distractor_score(similarity: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i w_i s_i / sum_i w_i`` over distractor similarity maps ``(M, ...)``."""
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(similarity.shape[1:], np.float32)
    return np.tensordot(weights / total, similarity, axes=1).astype(np.float32)
