"""Training pairs of real product artwork: the ``real`` data kind.

The matchers and the embedder learn their products from the synthetic generator's packs;
real photographs look different (print texture, lighting, lens blur, compression). This
source makes a training set the way the real-photo one-shot set
(:mod:`trainers.evaluate.real_set`) makes its trials, but only from the photographs of its
**train** split (the validation and test photographs never enter; the sample photographs
of OpenCV, scikit-learn and matplotlib are not among the sources at all):

* **products**: every crop :func:`trainers.evaluate.real_products.photo_products` cuts
  from those photographs (textured, low-texture and small detail windows), plus a
  hue-turned copy of every saturated textured one (70-150 degrees, as the set's colour
  look-alikes) — a product of its own in the same look-alike family, so a recoloured
  copy is a negative the embedder has to tell apart. A photograph's products form one
  family too: regions of the same photograph are each other's hard negatives;
* **scenes**: 1-4 products pasted into a window of another photograph of the split
  (perspective up to 35 degrees, the set's soft edges and shadows, slight relighting per
  product), then one scene-wide change drawn per scene: none, strong relighting, camera
  blur, a low-quality JPEG, or relighting and JPEG together;
* **catalog photos**: each product's face as it was cut (the reference of its pairs; its
  box, the whole photo, is stored as ``catalog_box``: a crop has no plain background to
  find it on).

Written in the synthetic generator's COCO layout (``annotations.json`` with a top-level
``products`` list, ``images/``, ``catalog/``), so :class:`trainers.data.coco.CocoSource`
reads it in ``catalog`` mode. A scene is a function of ``(seed, index)`` alone.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from matcher.errors import InvalidArgumentError
from trainers.evaluate import real_compose as rc
from trainers.evaluate import real_sources as rsrc
from trainers.evaluate import real_trials as rt

logger = logging.getLogger(__name__)

#: The only split whose photographs this source uses.
SPLIT = "train"
#: Scene-wide changes and how often each is drawn.
CHANGES = {"none": 0.2, "relight": 0.25, "blur": 0.2, "jpeg": 0.2, "relight_jpeg": 0.15}
#: Products per scene (inclusive range).
PER_SCENE = (1, 4)
#: Longer side of a pasted product, pixels.
SIDES = (36.0, 220.0)
#: Most perspective tilt of a pasted product, degrees.
MAX_TILT = 35.0
#: Saturation (HSV, 0-255) from which a textured product also gets a hue-turned copy.
MIN_SATURATION = rt.MIN_SATURATION


@dataclass(frozen=True)
class ArtworkProduct:
    """One product of the set: its face, its photograph and its look-alike family."""

    key: str
    image: np.ndarray
    source: str
    family: str


def artwork_products(library: rt.Library, seed: int) -> list[ArtworkProduct]:
    """The library's products and the hue-turned copies of its saturated textured ones
    (turns drawn from ``seed``)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    out = []
    for p in library.products:
        image = rt.as_reference(p.image)
        out.append(ArtworkProduct(p.key, image, p.source, p.source))
        if p.kind == "textured" and p.saturation >= MIN_SATURATION:
            turn = rc.lookalike_turn(rng)
            out.append(
                ArtworkProduct(
                    f"{p.key}@hue{round(turn):+d}", rc.hue_rotate(image, turn), p.source, p.source
                )
            )
    return out


def render_scene(
    library: rt.Library, products: list[ArtworkProduct], index: int, *, seed: int
) -> tuple[np.ndarray, list[tuple[int, rc.Pasted]], str]:
    """Scene ``index``: the uint8 image, ``(product index, pasted)`` of every instance, and
    the scene-wide change applied."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, index]))
    count = int(rng.integers(PER_SCENE[0], PER_SCENE[1] + 1))
    chosen: list[int] = []
    sources: set[str] = set()
    for k in rng.permutation(len(products)):
        if products[k].source not in sources:
            chosen.append(int(k))
            sources.add(products[k].source)
        if len(chosen) == count:
            break
    items = [
        rt.SceneItem(
            products[k].image,
            float(np.exp(rng.uniform(np.log(SIDES[0]), np.log(SIDES[1])))),
            MAX_TILT,
            str(k),
            products[k].source,
        )
        for k in chosen
    ]
    canvas, _, pasted, _ = rt.compose_scene(rng, library, items, set(sources))
    names = list(CHANGES)
    change = names[int(rng.choice(len(names), p=np.array(list(CHANGES.values()))))]
    if "relight" in change:
        canvas = rc.apply_relight(canvas, rc.draw_relight(rng))
    if change == "blur":
        canvas = rc.apply_blur(canvas, rc.draw_blur(rng))
    scene = rc.to_uint8(canvas)
    if "jpeg" in change:
        scene = rc.jpeg(scene, int(rng.integers(10, 41)))
    return scene, [(int(item.tag), done) for item, done in pasted], change


def generate_real_artwork(
    root: str | Path, *, num_scenes: int, seed: int, progress: bool = False
) -> dict[str, Any]:
    """Write the set to ``root`` (a new folder, filled in a temporary sibling and moved
    into place, so a failure leaves nothing half-written).

    Raises:
        InvalidArgumentError: the train split's photographs are missing (the message says
            which package to install), or ``num_scenes`` < 1.
        FileExistsError: ``root`` exists.
    """
    root = Path(root)
    if num_scenes < 1:
        raise InvalidArgumentError(f"a real-artwork set needs at least one scene, not {num_scenes}")
    if root.exists():
        raise FileExistsError(f"{root} exists")
    rsrc.check_sources([SPLIT])
    library = rt.load_library(SPLIT)
    products = artwork_products(library, seed)
    tmp = root.with_name(f".{root.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "catalog").mkdir()
    try:
        records = []
        for k, p in enumerate(products, start=1):
            name = f"catalog/{k:05d}.png"
            rc.save_rgb(tmp / name, p.image)
            height, width = p.image.shape[:2]
            records.append(
                {
                    "id": k,
                    "name": p.key,
                    "family": p.family,
                    "catalog": name,
                    "catalog_box": [0, 0, width, height],
                }
            )
        images, annotations, changes = [], [], dict.fromkeys(CHANGES, 0)
        for index in tqdm(range(num_scenes), desc="real artwork", disable=not progress):
            scene, pasted, change = render_scene(library, products, index, seed=seed)
            changes[change] += 1
            file_name = f"{index + 1:06d}.jpg"
            rc.save_rgb(tmp / "images" / file_name, scene, (cv2.IMWRITE_JPEG_QUALITY, 95))
            height, width = scene.shape[:2]
            images.append(
                {
                    "id": index + 1,
                    "file_name": file_name,
                    "width": width,
                    "height": height,
                    "change": change,
                }
            )
            for k, done in pasted:
                x0, y0, x1, y1 = done.box
                rle = mask_utils.encode(np.asfortranarray(done.mask.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": index + 1,
                        "category_id": k + 1,
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "area": int(done.mask.sum()),
                        "segmentation": rle,
                        "iscrowd": 0,
                    }
                )
        document = {
            "info": {
                "description": "siammatch real-artwork training set",
                "generator": "trainers.data.real_artwork",
                "version": 1,
                "seed": seed,
                "split": SPLIT,
                "sources": sorted(library.photos),
                "num_scenes": num_scenes,
                "num_products": len(products),
                "changes": changes,
                "images_dir": "images",
                "catalog_dir": "catalog",
            },
            "images": images,
            "annotations": annotations,
            "categories": [
                {"id": r["id"], "name": r["name"], "supercategory": r["family"]} for r in records
            ],
            "products": records,
        }
        (tmp / "annotations.json").write_text(json.dumps(document), encoding="utf-8")
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "%s: %d products, %d scenes, %d instances",
        root,
        len(products),
        num_scenes,
        len(annotations),
    )
    return document["info"]


__all__ = ["ArtworkProduct", "artwork_products", "generate_real_artwork", "render_scene"]
