"""COCO records of the synthetic dataset: images, annotations, categories and products.

Annotations carry the *visible* part of each instance: ``segmentation`` is the compressed
COCO RLE of the visible mask (``counts`` as ``str``), ``bbox`` is ``[x, y, w, h]`` of
that mask in whole pixels and ``area`` its pixel count. Instances whose visible fraction
of their silhouette is below ``min_visible`` are kept with ``iscrowd = 1``: COCO
evaluation treats them as ignore regions (a detection there is neither a true nor a false
positive) and training code skips crowd annotations, as it does for COCO itself. Every
annotation also has an extra ``visible_fraction`` field.

RLE is encoded with pycocotools directly rather than through :mod:`matcher.mask_codec`, so
the generator's worker processes never import ``matcher`` (and torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from trainers.data.synth.designs import ProductSpec
from trainers.data.synth.scenes import Scene

LOW_VISIBILITY_RULE = (
    "visible_fraction = visible pixels / pixels of the whole silhouette (occlusion and "
    "truncation by the image border both hide pixels); instances below settings.min_visible "
    "are kept with iscrowd=1 (COCO ignore regions); fully hidden instances are not annotated"
)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W)`` bool mask -> compressed COCO RLE ``{"size": [H, W], "counts": str}``.

    A bool mask already in Fortran order (as scenes make them) is encoded without a copy.
    """
    binary = mask.view(np.uint8) if mask.dtype == bool else (mask != 0).astype(np.uint8)
    rle = coco_mask.encode(np.asfortranarray(binary))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def scene_records(
    scene: Scene, *, image_id: int, file_name: str, min_visible: float
) -> dict[str, Any]:
    """The COCO image entry and annotations (without ids) of one scene.

    Args:
        scene: the composed scene.
        image_id: COCO image id.
        file_name: image file name, relative to the dataset's ``images/`` folder.
        min_visible: visible fraction under which an instance becomes ``iscrowd = 1``.

    Returns:
        ``{"image": {...}, "annotations": [{...}, ...]}``; annotation ``id`` fields are
        assigned when the dataset is assembled, so they do not depend on worker count.
    """
    h, w = scene.image.shape[:2]
    annotations = []
    for inst in scene.instances:
        rle = encode_mask(inst.mask)
        compressed = _bytes_rle(rle)
        x, y, bw, bh = (int(v) for v in coco_mask.toBbox(compressed))  # integral floats
        annotations.append(
            {
                "image_id": image_id,
                "category_id": inst.product_id,
                "bbox": [x, y, bw, bh],
                "area": int(coco_mask.area(compressed)),
                "segmentation": rle,
                "iscrowd": int(inst.visible_fraction < min_visible),
                "visible_fraction": round(float(inst.visible_fraction), 4),
            }
        )
    image = {
        "id": image_id,
        "file_name": file_name,
        "width": w,
        "height": h,
        "layout": scene.layout,
        "background": scene.background,
    }
    return {"image": image, "annotations": annotations}


def _bytes_rle(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": rle["size"], "counts": rle["counts"].encode()}


def product_record(spec: ProductSpec, *, catalog_file: str) -> dict[str, Any]:
    """The entry of a catalog product in the dataset's top-level ``products`` list."""
    return {
        "id": spec.product_id,
        "name": spec.name,
        "family": spec.family_name,
        "family_id": spec.family_id,
        "category": spec.category,
        "shape": spec.shape,
        "catalog": catalog_file,
        "lookalikes": list(spec.lookalikes),
    }


def category_record(spec: ProductSpec) -> dict[str, Any]:
    """The COCO category of a catalog product: one category per product."""
    return {"id": spec.product_id, "name": spec.name, "supercategory": spec.family_name}


def assemble(
    *,
    info: dict[str, Any],
    specs: list[ProductSpec],
    catalog_files: list[str],
    scenes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole ``annotations.json`` document, with sequential annotation ids.

    Args:
        info: the ``info`` block (seed, settings ...).
        specs: catalog products, in id order.
        catalog_files: catalog photo path of each product, relative to the dataset root.
        scenes: :func:`scene_records` outputs, in image id order.

    Returns:
        A JSON-ready dict: ``info``, ``licenses``, ``images``, ``annotations``,
        ``categories`` and ``products``.
    """
    annotations = []
    for record in scenes:
        for ann in record["annotations"]:
            annotations.append({"id": len(annotations) + 1, **ann})
    return {
        "info": info,
        "licenses": [],
        "images": [record["image"] for record in scenes],
        "annotations": annotations,
        "categories": [category_record(s) for s in specs],
        "products": [
            product_record(s, catalog_file=f) for s, f in zip(specs, catalog_files, strict=True)
        ],
    }
