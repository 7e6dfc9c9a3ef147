"""Detection episodes from COCO-format sets: a scene, a category in it, references of that
category, and every instance of it in the scene as targets.

:class:`EpisodeSource` indexes one annotation file (nothing but the JSON is read);
:class:`EpisodeDataset` draws episode ``i`` of epoch ``e`` from
``numpy.random.default_rng(SeedSequence([seed, e, i]))``, like the pair datasets
(:mod:`trainers.data.dataset`), so items do not depend on workers, order or resumption,
and reads the pixels. Sampling follows the one-shot COCO protocol of Siamese Mask R-CNN:
an image uniformly, then one of its categories uniformly; references are crops of random
instances of that category from *other* images (``category`` mode), or the product's
catalog photo (``catalog`` mode, product sets); every other object, excluded categories
included, is background.

Annotations marked ``iscrowd``/``ignore`` and boxes thinner than one pixel are never
targets (torchvision's heads have no ignore regions); references need sides of at least
:data:`~trainers.data.sources.MIN_SIDE` pixels.

Shape shorthand / naming: ``K`` shots, ``S`` reference side, ``N`` target instances. An
item is a dict of tensors (batched by :func:`trainers.detection.targets.collate_episodes`):

* ``scene``: ``(3, H, W)`` uint8 RGB, the whole image (the network resizes it);
* ``reference``: ``(K, 3, S, S)`` uint8 RGB square crops
  (:func:`matcher.crops.reference_crop`);
* ``boxes``: ``(N, 4)`` float32, xyxy scene pixels, ``N >= 1``;
* ``labels``: ``(N,)`` int64, all 1 ("matches the reference");
* ``masks``: ``(N, H, W)`` uint8 0/1 (the filled box when an annotation has no mask);
* ``category``: 0-d int64, the episode's category id;
* ``image_id``: 0-d int64, the scene's COCO image id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from matcher.crops import reference_crop
from matcher.errors import ConfigError, InvalidArgumentError, InvalidImageError
from matcher.foreground import foreground_box
from trainers.augment import one_torch_thread
from trainers.data.builder import CocoFiles
from trainers.data.coco import decode_segmentation, xyxy_box
from trainers.data.dataset import SeededItems
from trainers.data.sources import MIN_SIDE, View, draw_excluding

logger = logging.getLogger(__name__)

EpisodeMode = Literal["category", "catalog"]


@dataclass(frozen=True, eq=False)
class Episode:
    """One episode, before any pixel is read.

    Attributes:
        scene: path of the scene image.
        image_id: its COCO image id.
        category: the episode's category id.
        boxes: ``(N, 4)`` float32 xyxy of all its instances in the scene.
        segmentations: their COCO segmentations (``None`` where absent).
        references: ``K`` reference views (``box`` ``None``: a catalog photo).
    """

    scene: str
    image_id: int
    category: int
    boxes: np.ndarray
    segmentations: tuple[Any, ...]
    references: tuple[View, ...]


class EpisodeSource:
    """The episodes one COCO-format annotation file offers.

    Args:
        files: the annotation document and folders (:func:`trainers.data.builder.coco_files`).
        mode: ``category`` (references from other images) or ``catalog`` (catalog photos).
        exclude: category ids never drawn (neither as episode nor as reference).
        only: when given, the only category ids drawn.
        index: the source's position (identities of its reference views).
        name: for errors and logs.

    Raises:
        ConfigError: malformed records, ``catalog`` mode without catalog photos, or no
            drawable episode.
    """

    def __init__(
        self,
        files: CocoFiles,
        *,
        mode: EpisodeMode,
        exclude: frozenset[int] = frozenset(),
        only: frozenset[int] | None = None,
        index: int = 0,
        name: str = "episodes",
    ) -> None:
        self.name = name
        self.index = index
        self.mode = mode
        if mode not in ("category", "catalog"):
            raise ConfigError(f"{name}: episodes take pair_mode category or catalog, got {mode!r}")
        document = files.document
        try:
            images = sorted((int(im["id"]), str(im["file_name"])) for im in document["images"])
            known = {int(c["id"]) for c in document["categories"]}
            catalog = {
                int(p["id"]): str(files.annotation_dir / p["catalog"])
                for p in document.get("products") or []
                if p.get("catalog")
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: malformed COCO image/category record: {exc}") from exc
        if mode == "catalog" and not catalog:
            raise ConfigError(f"{name}: pair_mode 'catalog' needs products with catalog photos")
        row_of = {image_id: row for row, (image_id, _) in enumerate(images)}
        self._image_ids = np.array([i for i, _ in images], np.int64)
        self._files = [str(files.image_root / f) for _, f in images]
        self._catalog = catalog
        allowed = {c for c in known if c not in exclude and (only is None or c in only)}
        boxes, segs, rows, cats, usable = [], [], [], [], []
        for ann in document["annotations"]:
            box = xyxy_box(ann.get("bbox"), 1.0)
            row = row_of.get(ann.get("image_id"))
            cat = ann.get("category_id")
            if ann.get("iscrowd", 0) or ann.get("ignore", 0) or box is None or row is None:
                continue
            if cat not in known:
                raise ConfigError(f"{name}: annotation {ann.get('id')} has unknown category {cat}")
            boxes.append(box)
            segs.append(ann.get("segmentation") or None)
            rows.append(row)
            cats.append(int(cat))
            usable.append(min(box[2] - box[0], box[3] - box[1]) >= MIN_SIDE)
        self._boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self._segs = segs
        self._rows = np.asarray(rows, np.int64)
        self._cats = np.asarray(cats, np.int64)
        targets: dict[tuple[int, int], list[int]] = defaultdict(list)
        references: dict[int, list[int]] = defaultdict(list)
        for k, (row, cat) in enumerate(zip(rows, cats, strict=True)):
            if cat in allowed:
                targets[(row, cat)].append(k)
                if usable[k]:
                    references[cat].append(k)
        self._targets = {key: np.asarray(v, np.int64) for key, v in targets.items()}
        self._references = {c: np.asarray(v, np.int64) for c, v in references.items()}
        per_row: dict[int, list[int]] = defaultdict(list)
        for row, cat in sorted(self._targets):
            if self._has_reference(row, cat):
                per_row[row].append(cat)
        self._rows_drawn = np.asarray(sorted(per_row), np.int64)
        self._row_categories = {row: np.asarray(c, np.int64) for row, c in per_row.items()}
        self.num_episodes = sum(len(c) for c in per_row.values())
        if self.num_episodes == 0:
            raise ConfigError(
                f"{name}: no episode can be drawn ({len(self._boxes)} usable annotations, "
                f"{len(allowed)} allowed categories, pair_mode {mode})"
            )
        logger.info(
            "%s: %d (image, category) episodes over %d images, %d categories",
            name,
            self.num_episodes,
            len(self._rows_drawn),
            len({c for _, c in self._targets}),
        )

    def _has_reference(self, row: int, cat: int) -> bool:
        if self.mode == "catalog":
            return cat in self._catalog
        members = self._references.get(cat)
        return members is not None and bool(np.any(self._rows[members] != row))

    def draw(self, rng: np.random.Generator, *, shots: int) -> Episode:
        """An image, one of its categories, and ``shots`` references of it."""
        row = int(self._rows_drawn[rng.integers(len(self._rows_drawn))])
        choices = self._row_categories[row]
        cat = int(choices[rng.integers(len(choices))])
        members = self._targets[(row, cat)]
        refs = tuple(self._reference(rng, row, cat) for _ in range(shots))
        return Episode(
            scene=self._files[row],
            image_id=int(self._image_ids[row]),
            category=cat,
            boxes=self._boxes[members].copy(),
            segmentations=tuple(self._segs[k] for k in members),
            references=refs,
        )

    def _reference(self, rng: np.random.Generator, row: int, cat: int) -> View:
        identity = (self.index, cat)
        if self.mode == "catalog":
            return View(image=self._catalog[cat], box=None, identity=identity)
        members = self._references[cat]
        k = int(members[draw_excluding(rng, self._rows[members], row)])
        box = tuple(float(v) for v in self._boxes[k])
        return View(image=self._files[self._rows[k]], box=box, identity=identity)  # type: ignore[arg-type]


class EpisodeDataset(SeededItems):
    """Training or validation episodes, deterministic per ``(seed, epoch, index)``.

    Args:
        sources: where episodes come from.
        ratios: relative sampling weight of each source.
        length: items per epoch.
        seed: base seed (``>= 0``).
        shots: references per episode ``K``.
        reference_size: reference crop side ``S``.
        reference_context: margin around reference boxes, fraction of their sides.
        flip: probability of a horizontal flip of the scene (with its targets), and,
            drawn independently, of each reference.
        vary_by_epoch: ``False`` for a fixed set (validation): :meth:`set_epoch` is then
            ignored.

    Raises:
        InvalidArgumentError: no source, bad ratios, or a non-positive count or size.
    """

    item_name = "episode"

    def __init__(
        self,
        sources: Sequence[EpisodeSource],
        *,
        ratios: Sequence[float],
        length: int,
        seed: int,
        shots: int,
        reference_size: int,
        reference_context: float,
        flip: float = 0.0,
        vary_by_epoch: bool = True,
    ) -> None:
        if not sources or len(ratios) != len(sources):
            raise InvalidArgumentError("give one ratio per episode source, and a source")
        weights = np.asarray(ratios, np.float64)
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise InvalidArgumentError(f"source ratios must be positive, got {list(ratios)}")
        for value, what in ((length, "length"), (shots, "shots"), (reference_size, "size")):
            if value < 1:
                raise InvalidArgumentError(f"episode {what} must be >= 1, got {value}")
        if seed < 0 or reference_context < 0 or not 0.0 <= flip <= 1.0:
            raise InvalidArgumentError("seed and context must be >= 0, flip in [0, 1]")
        self.sources = list(sources)
        self.probabilities = weights / weights.sum()
        super().__init__(length=length, seed=seed, vary_by_epoch=vary_by_epoch)
        self.shots = int(shots)
        self.reference_size = int(reference_size)
        self.reference_context = float(reference_context)
        self.flip = float(flip)

    def _draw(self, rng: np.random.Generator) -> Episode:
        source = self.sources[int(rng.choice(len(self.sources), p=self.probabilities))]
        return source.draw(rng, shots=self.shots)

    def episode(self, index: int) -> Episode:
        """The episode item ``index`` is made of (no pixels read)."""
        return self._draw(self._rng(index))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self.length
        rng = self._rng(index)
        episode = self._draw(rng)
        with one_torch_thread():
            return self._make(episode, rng)

    def _make(self, episode: Episode, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        scene = _read(episode.scene)
        height, width = scene.shape[:2]
        masks = np.stack(
            [
                _instance_mask(seg, box, height, width, episode.scene)
                for seg, box in zip(episode.segmentations, episode.boxes, strict=True)
            ]
        )
        crops = []
        for view in episode.references:
            image = _read(view.image)
            box = view.box if view.box is not None else foreground_box(image)
            crop = reference_crop(
                image, box, size=self.reference_size, context=self.reference_context
            )
            if rng.random() < self.flip:
                crop = crop[:, ::-1]
            crops.append(np.ascontiguousarray(crop))
        image = tv_tensors.Image(torch.from_numpy(scene).permute(2, 0, 1).contiguous())
        boxes = tv_tensors.BoundingBoxes(
            torch.from_numpy(episode.boxes.copy()), format="XYXY", canvas_size=(height, width)
        )
        mask = tv_tensors.Mask(torch.from_numpy(masks))
        if rng.random() < self.flip:
            image, boxes, mask = (TF.horizontal_flip(t) for t in (image, boxes, mask))
        reference = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
        return {
            "scene": image.as_subclass(torch.Tensor),
            "reference": reference,
            "boxes": boxes.as_subclass(torch.Tensor).float(),
            "labels": torch.ones(len(episode.boxes), dtype=torch.int64),
            "masks": mask.as_subclass(torch.Tensor).contiguous(),
            "category": torch.tensor(episode.category, dtype=torch.int64),
            "image_id": torch.tensor(episode.image_id, dtype=torch.int64),
        }


def _read(path: str) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidImageError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _instance_mask(seg: Any, box: np.ndarray, height: int, width: int, path: str) -> np.ndarray:
    """An annotation's mask ``(H, W)`` uint8, or its filled box when it has none."""
    if seg is None:
        mask = np.zeros((height, width), np.uint8)
        x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
        mask[max(y0, 0) : int(np.ceil(box[3])), max(x0, 0) : int(np.ceil(box[2]))] = 1
        return mask
    try:
        return decode_segmentation(seg, height=height, width=width)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidImageError(f"bad mask for {path}: {exc}") from exc
