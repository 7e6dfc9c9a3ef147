"""Catalog retrieval: does a scene crop's nearest catalog photos include its product?

On a synthetic dataset (``siammatch synth``: categories are products, each with a catalog
photo), every product's catalog photo is embedded once, and every annotated instance that
is mostly visible (``visible_fraction >= min_visible``, not crowd, at least ``min_size``
pixels on each side) is cut from its scene as a square around its box (the longer side
times ``1 + context``) and embedded as a query. Exact inner-product search over the whole
catalog gives recall@k (the true product among the top k) for each k, and the mean rank.

The baseline a user would otherwise reach for is :class:`PooledFeatures`: the same
backbone, untrained, with its last feature map GeM-pooled and L2-normalised — no training,
no projection head.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from matcher.crops import square_crop
from matcher.errors import InvalidArgumentError
from matcher.images import load_image

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrievalReport:
    """Recall of the true product among the top ``k`` catalog hits.

    Attributes:
        recall: ``{k: fraction of queries whose product is in the top k}``.
        mean_rank: mean 1-based rank of the true product.
        num_queries / num_products: queries (scene crops) and catalog size.
    """

    recall: dict[int, float]
    mean_rank: float
    num_queries: int
    num_products: int

    def as_dict(self) -> dict:
        return {
            "recall": {str(k): v for k, v in self.recall.items()},
            "mean_rank": self.mean_rank,
            "num_queries": self.num_queries,
            "num_products": self.num_products,
        }


class PooledFeatures(nn.Module):
    """Baseline: an embedder's backbone, GeM-pooled and normalised, without its head.

    Args:
        embedder: an :class:`matcher.embedder.Embedder` (usually untrained); its
            ``preprocess`` and backbone are reused.
    """

    def __init__(self, embedder: nn.Module) -> None:
        super().__init__()
        self.embedder = embedder

    def embed(self, images: Sequence[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
        out = []
        self.embedder.eval()
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = self.embedder.preprocess(images[start : start + batch_size])
                feats = self.embedder.backbone(x)[-1]
                out.append(F.normalize(self.embedder.pool(feats), dim=1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def load_queries(
    root: Path, *, min_visible: float = 0.75, min_size: int = 16, context: float = 0.1
) -> tuple[list[np.ndarray], list[int], list[np.ndarray], list[int]]:
    """Catalog photos with their product ids, and scene crops with their product ids.

    Raises:
        InvalidArgumentError: ``root`` is not a synthetic dataset (no ``products``).
    """
    ann_path = root / "annotations.json"
    if not ann_path.is_file():
        raise InvalidArgumentError(f"{root} has no annotations.json (not a synthetic dataset)")
    data = json.loads(ann_path.read_text())
    if "products" not in data:
        raise InvalidArgumentError(f"{ann_path} lists no products (not a synthetic dataset)")
    products = sorted(data["products"], key=lambda p: p["id"])
    catalog = [load_image(root / p["catalog"]) for p in products]
    catalog_ids = [int(p["id"]) for p in products]
    files = {img["id"]: img["file_name"] for img in data["images"]}
    images_dir = root / data.get("info", {}).get("images_dir", "images")
    crops, crop_ids, cache = [], [], {}
    for ann in sorted(data["annotations"], key=lambda a: a["id"]):
        x, y, w, h = ann["bbox"]
        if ann.get("iscrowd") or ann.get("visible_fraction", 1.0) < min_visible:
            continue
        if min(w, h) < min_size or ann["category_id"] not in set(catalog_ids):
            continue
        image_id = ann["image_id"]
        if image_id not in cache:
            cache.clear()
            cache[image_id] = load_image(images_dir / files[image_id])
        crops.append(square_crop(cache[image_id], (x, y, x + w, y + h), context))
        crop_ids.append(int(ann["category_id"]))
    return catalog, catalog_ids, crops, crop_ids


def recall_at(
    xb: np.ndarray,
    xb_ids: Sequence[int],
    xq: np.ndarray,
    xq_ids: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
) -> RetrievalReport:
    """Exact inner-product retrieval of ``xq`` rows among ``xb`` rows.

    Args:
        xb: ``(N, D)`` catalog vectors, unit norm; ``xb_ids`` their product ids.
        xq: ``(M, D)`` query vectors, unit norm; ``xq_ids`` their true product ids.
        ks: cut-offs to report.
    """
    if len(xq) == 0:
        raise InvalidArgumentError("no queries to evaluate")
    scores = xq @ xb.T
    ids = np.asarray(xb_ids)
    truth = np.asarray(xq_ids)
    true_score = np.where(ids[None, :] == truth[:, None], scores, -np.inf).max(axis=1)
    rank = 1 + (scores > true_score[:, None]).sum(axis=1)
    return RetrievalReport(
        recall={k: float((rank <= k).mean()) for k in ks},
        mean_rank=float(rank.mean()),
        num_queries=len(xq),
        num_products=len(xb),
    )


def evaluate_embedders(
    root: Path,
    embedders: dict[str, object],
    *,
    ks: Sequence[int] = (1, 5, 10),
    context: float = 0.1,
) -> dict[str, RetrievalReport]:
    """Recall@k of several embedders on one synthetic dataset.

    Args:
        root: a ``siammatch synth`` dataset.
        embedders: name -> object with ``embed(list of HxWx3 uint8) -> (N, D)`` unit rows
            (an :class:`matcher.embedder.Embedder` or a :class:`PooledFeatures`).
        ks: cut-offs.
        context: scene crops are squares of the box's longer side times ``1 + context``.
    """
    catalog, catalog_ids, crops, crop_ids = load_queries(Path(root), context=context)
    logger.info("retrieval: %d products, %d scene crops", len(catalog), len(crops))
    reports = {}
    for name, model in embedders.items():
        xb = model.embed(catalog)
        xq = model.embed(crops)
        reports[name] = recall_at(xb, catalog_ids, xq, crop_ids, ks=ks)
    return reports
