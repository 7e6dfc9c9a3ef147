"""Validation on held-out pairs: where does the network put the reference in the search crop?

For each pair the network's raw outputs on (template, search) are decoded by the family's
own match-mode decoder (the search crop seen as a single pyramid level at scale 1, no
cosine window), and the best candidate is compared with the true box: mean IoU and success
AUC over positive pairs, and the mean best score on negative pairs (how confident the
network is about an object that is not the reference).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from matcher.inference.decode import LevelOutputs, MatchDecoder, ReferenceGeometry
from trainers.evaluate.metrics import box_iou_pairs, success_auc


@dataclass(frozen=True)
class PairMetrics:
    """Localisation on held-out pairs.

    Attributes:
        mean_iou: mean IoU of the best box on positive pairs.
        success_auc: area under the success curve on positive pairs.
        negative_score: mean best score on negative pairs (lower is better).
        num_pairs: pairs evaluated (positives, negatives).
    """

    mean_iou: float
    success_auc: float
    negative_score: float
    num_pairs: tuple[int, int]

    def as_dict(self) -> dict[str, float]:
        return {
            "val_mean_iou": self.mean_iou,
            "val_success_auc": self.success_auc,
            "val_negative_score": self.negative_score,
        }


def to_network_input(images: torch.Tensor, input_format: str) -> torch.Tensor:
    """uint8 RGB ``(B, 3, H, W)`` -> float ``(B, 3, H, W)`` in the network's channel order."""
    images = images.float()
    return images.flip(1) if input_format == "bgr" else images


@torch.no_grad()
def best_boxes(
    net: torch.nn.Module,
    decoder: MatchDecoder,
    batch: dict[str, torch.Tensor],
    *,
    offset: float,
    stride: int,
    input_format: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Best box (xyxy, search-crop pixels) and its score for every pair of a batch."""
    z = to_network_input(batch["template"], input_format)
    x = to_network_input(batch["search"], input_format)
    outputs = net(z, x)
    keys = [k for k in ("cls", "loc", "response", "ctr", "offsets") if k in outputs]
    tb = batch["template_box"].float().cpu().numpy()
    boxes = np.zeros((len(tb), 4), np.float32)
    scores = np.zeros((len(tb),), np.float32)
    for b in range(len(tb)):
        maps = {k: outputs[k][b : b + 1].float().cpu() for k in keys}
        size = next(iter(maps.values())).shape[-2:]
        level = LevelOutputs(
            scale=1.0,
            pad=0,
            offset=offset,
            stride=stride,
            outputs=maps,
            covered=torch.ones(size, dtype=torch.bool),
        )
        ref = ReferenceGeometry(float(tb[b, 2] - tb[b, 0]), float(tb[b, 3] - tb[b, 1]))
        found, found_scores = decoder.decode([level], 0, ref, threshold=0.0, top_k=1)
        if len(found_scores):
            i = int(np.argmax(found_scores))
            boxes[b], scores[b] = found[i], found_scores[i]
    return boxes, scores


def evaluate_pairs(
    net: torch.nn.Module,
    decoder: MatchDecoder,
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    offset: float,
    stride: int,
    input_format: str,
    device: torch.device,
) -> PairMetrics:
    """Localisation metrics of ``net`` over held-out batches (eval mode is set and restored)."""
    was_training = net.training
    net.eval()
    ious, neg_scores = [], []
    try:
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            boxes, scores = best_boxes(
                net, decoder, batch, offset=offset, stride=stride, input_format=input_format
            )
            label = batch["label"].cpu().numpy()
            truth = batch["search_box"].float().cpu().numpy()
            pos = label == 1
            ious.append(box_iou_pairs(boxes[pos], truth[pos]))
            neg_scores.append(scores[~pos])
    finally:
        net.train(was_training)
    iou = np.concatenate(ious) if ious else np.zeros(0)
    neg = np.concatenate(neg_scores) if neg_scores else np.zeros(0)
    return PairMetrics(
        mean_iou=float(iou.mean()) if iou.size else 0.0,
        success_auc=success_auc(iou),
        negative_score=float(neg.mean()) if neg.size else 0.0,
        num_pairs=(int(iou.size), int(neg.size)),
    )
