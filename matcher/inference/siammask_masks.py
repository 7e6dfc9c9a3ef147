"""SiamMask's masks: where a score cell's mask lies in the image, and masks for match mode.

A mask predicted at score cell ``(row, col)`` of a search crop covers the exemplar-sized
window of that cell: in crop pixels ``[(col - base/2) * stride, ... + exemplar]`` (and the
same for rows), where ``base`` is the recipe's ``base_size``. Scaled by the crop's side
over ``instance_size`` and shifted by the crop's corner, this gives the window in image
pixels (:func:`cell_window`); the mask is warped there with PySOT's mapping
(:func:`paste_mask`: ``cv2.warpAffine``, bilinear, zero outside). Thresholding and the
rotated rectangle around the largest contour follow SiamMask's tracker, which uses both.

In match mode the whole-scene search finds boxes; each final instance then gets its own
mask from a second, local look, exactly as the tracker would take it
(:class:`InstanceMasker`): a search crop centred on the instance with the context of a
template of the instance's size, one batched network pass over all the instance crops,
the mask predicted at the most confident score cell near the crop centre, warped back into
the scene, thresholded, and outlined by the rotated rectangle around its largest contour.
This keeps the mask path independent of the pyramid and tiling, costs one search-crop
pass per instance, and gives every instance a mask in scene coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from matcher.crops import centre_peak, search_crops
from matcher.inference.rpn_tracker import foreground_probability
from matcher.inference.tracking import crops_to_tensor
from matcher.mask_codec import largest_contour_polygon
from matcher.model_config import NetGeometry


def cell_window(
    crop_box: tuple[float, float, float],
    row: int,
    col: int,
    *,
    instance_size: int,
    exemplar_size: int,
    stride: int,
    base_size: int,
) -> tuple[float, float, float]:
    """Image-pixel square ``(x0, y0, side)`` covered by the mask of a score cell.

    Args:
        crop_box: ``(x0, y0, side)`` of the search crop in the image.
        row / col: the score cell.
        instance_size / exemplar_size / stride / base_size: network geometry.
    """
    x0, y0, side = crop_box
    s = side / instance_size
    return (
        x0 + (col - base_size / 2) * stride * s,
        y0 + (row - base_size / 2) * stride * s,
        s * exemplar_size,
    )


def paste_mask(
    mask: np.ndarray, window: tuple[float, float, float], image_size: tuple[int, int]
) -> np.ndarray:
    """Warp an ``MxM`` mask (probabilities) onto its image window.

    Args:
        mask: ``(M, M)`` float32 in ``[0, 1]``.
        window: ``(x0, y0, side)`` in image pixels.
        image_size: ``(height, width)``.

    Returns:
        ``(height, width)`` float32, zero outside the window.
    """
    height, width = image_size
    out = mask.shape[0]
    s = out / window[2]
    back = (-window[0] * s, -window[1] * s, width * s, height * s)
    a = (width - 1) / back[2]
    b = (height - 1) / back[3]
    mapping = np.array([[a, 0, -a * back[0]], [0, b, -b * back[1]]], dtype=np.float64)
    return cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.float32),
        mapping,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


@dataclass(frozen=True, eq=False)
class InstanceMask:
    """One instance's mask.

    Attributes:
        mask: ``(H, W)`` bool in scene coordinates.
        polygon: corners ``((x, y), ...)`` of the rotated rectangle around the largest
            region, or of the box when the mask is empty or tiny.
        cell: ``(row, col)`` of the score cell it was predicted at.
    """

    mask: np.ndarray
    polygon: tuple[tuple[float, float], ...]
    cell: tuple[int, int]


class InstanceMasker:
    """Predicts a mask for each instance box with a SiamMask network.

    Args:
        geometry: network geometry.
        threshold: mask probability threshold.
        search_radius: the mask cell is the most confident one within this many cells
            of the crop centre.
        batch_size: instance crops per network pass.
    """

    def __init__(
        self,
        *,
        geometry: NetGeometry,
        threshold: float,
        search_radius: int = 2,
        batch_size: int = 16,
    ) -> None:
        self.geometry = geometry
        self.threshold = threshold
        self.search_radius = search_radius
        self.batch_size = batch_size

    def __call__(
        self,
        net: torch.nn.Module,
        template: list[torch.Tensor],
        scene: np.ndarray,
        boxes: list[tuple[float, float, float, float]],
        device: torch.device,
    ) -> list[InstanceMask]:
        """Masks for ``boxes`` (xyxy, scene pixels) of ``scene`` (network channel order)."""
        out: list[InstanceMask] = []
        for start in range(0, len(boxes), self.batch_size):
            chunk = boxes[start : start + self.batch_size]
            with torch.no_grad():
                out += self._masks(net, template, scene, chunk, device)
        return out

    def _masks(self, net, template, scene, boxes, device) -> list[InstanceMask]:
        g = self.geometry
        crops, crop_boxes = search_crops(
            scene,
            boxes,
            exemplar_size=g.exemplar_size,
            instance_size=g.instance_size,
            context_amount=g.context_amount,
        )
        xk = net.encode_search(crops_to_tensor(crops, device))
        cls = net.correlate(template, xk)["cls"]
        prob = foreground_probability(cls).reshape(len(boxes), g.num_anchors, g.score_size, -1)
        _, rows, cols = centre_peak(prob.max(axis=1), self.search_radius)
        positions = torch.tensor(
            [[i, int(rows[i]), int(cols[i])] for i in range(len(boxes))], dtype=torch.long
        )
        probs = torch.sigmoid(net.mask_logits(template, xk, positions)).cpu().numpy()
        results = []
        for i, box in enumerate(boxes):
            window = cell_window(
                crop_boxes[i],
                int(rows[i]),
                int(cols[i]),
                instance_size=g.instance_size,
                exemplar_size=g.exemplar_size,
                stride=g.stride,
                base_size=g.base_size,
            )
            binary = paste_mask(probs[i], window, scene.shape[:2]) > self.threshold
            poly = largest_contour_polygon(binary)
            if poly is None:
                x0, y0, x1, y1 = box
                poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            results.append(
                InstanceMask(
                    mask=binary,
                    polygon=tuple((float(px), float(py)) for px, py in poly),
                    cell=(int(rows[i]), int(cols[i])),
                )
            )
        return results
