"""The training-pair dataset: sample a pair, read its images, crop, augment, return tensors.

Item ``i`` of epoch ``e`` draws everything (source, positive/negative, objects, crop
jitter, augmentation) from ``numpy.random.default_rng(SeedSequence([seed, e, i]))``, so it
is the same whatever the number of DataLoader workers, their order, or which items were
drawn before: training resumes mid-epoch and DDP shards agree without coordination.
Images are read (OpenCV) and masks decoded (pycocotools) inside ``__getitem__``; the
per-item torch work runs single-threaded (:func:`trainers.augment.one_torch_thread`).

Shape shorthand / naming: ``Z`` is the exemplar (template) side, ``X`` the search side;
*template* is the reference crop and *search* the scene crop. An item is a dict of
tensors (the default collate batches them):

* ``template``: ``(3, Z, Z)`` uint8 RGB;
* ``search``: ``(3, X, X)`` uint8 RGB;
* ``template_box``: ``(4,)`` float32, xyxy in template-crop pixels;
* ``search_box``: ``(4,)`` float32, xyxy in search-crop pixels, of the object the search
  crop is centred on (the reference's object for positives, the other object for
  negatives);
* ``search_mask``: ``(X, X)`` uint8 0/1 of that object (zeros when there is no mask);
* ``has_mask``: 0-d bool;
* ``label``: 0-d int64, 1 positive / 0 negative;
* ``identity``: 0-d int64, a stable code (CRC-32) of the reference's identity: equal codes
  mean the same product, instance or track (for losses that must not treat two pairs of
  one product in a batch as different).
"""

from __future__ import annotations

import logging
import zlib

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from matcher.errors import InvalidArgumentError, InvalidImageError
from matcher.foreground import foreground_box
from trainers.augment import PairAugment, one_torch_thread
from trainers.data.coco import decode_segmentation
from trainers.data.crops import (
    Jitter,
    context_side,
    jittered_crop_matrix,
    mean_color,
    warp_box,
    warp_image,
    warp_mask,
)
from trainers.data.pairs import Pair, PairSampler
from trainers.data.sources import View

logger = logging.getLogger(__name__)


class SeededItems(Dataset):
    """A dataset whose item ``index`` of an epoch is drawn with its own generator, seeded by
    ``(seed, epoch, index)``: the same items with any number of workers, and a resumed run
    sees the items it would have seen.

    Args:
        length: items per epoch.
        seed: base seed.
        vary_by_epoch: ``False`` for a fixed set (validation): :meth:`set_epoch` is then
            ignored and every epoch yields the same items.
    """

    #: What an item is called in messages.
    item_name = "item"

    def __init__(self, *, length: int, seed: int, vary_by_epoch: bool) -> None:
        self.length = int(length)
        self.seed = int(seed)
        self.vary_by_epoch = vary_by_epoch
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose items are returned (ignored when ``vary_by_epoch=False``).

        Raises:
            InvalidArgumentError: a negative epoch.
        """
        if epoch < 0:
            raise InvalidArgumentError(f"epoch must be >= 0, got {epoch}")
        if self.vary_by_epoch:
            self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.length:
            raise IndexError(
                f"{self.item_name} index {index} out of range for {self.length} {self.item_name}s"
            )
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))


class PairDataset(SeededItems):
    """Training or validation pairs, deterministic per ``(seed, epoch, index)``.

    Args:
        sampler: draws the pairs.
        length: items per epoch.
        seed: base seed.
        exemplar_size: template side ``Z``.
        search_size: search side ``X`` (``>= Z``).
        context_amount: context around a box, fraction of ``w + h``.
        template_jitter / search_jitter: crop-window jitter of each crop (``None``: none).
        augment: photometric/blur/flip/grey augmentation (``PairAugment()`` for none).
        vary_by_epoch: ``False`` for a fixed set (validation): :meth:`set_epoch` is then
            ignored and every epoch yields the same items.

    Raises:
        InvalidArgumentError: a non-positive length or size, ``X < Z``, or a negative
            seed or context amount.
    """

    item_name = "pair"

    def __init__(
        self,
        sampler: PairSampler,
        *,
        length: int,
        seed: int,
        exemplar_size: int,
        search_size: int,
        context_amount: float,
        template_jitter: Jitter | None = None,
        search_jitter: Jitter | None = None,
        augment: PairAugment | None = None,
        vary_by_epoch: bool = True,
    ) -> None:
        if length < 1:
            raise InvalidArgumentError(f"dataset length must be >= 1, got {length}")
        if seed < 0:
            raise InvalidArgumentError(f"seed must be >= 0, got {seed}")
        if exemplar_size < 1 or search_size < exemplar_size:
            raise InvalidArgumentError(
                f"need 1 <= exemplar_size <= search_size, got {exemplar_size}, {search_size}"
            )
        if context_amount < 0:
            raise InvalidArgumentError(f"context_amount must be >= 0, got {context_amount}")
        super().__init__(length=length, seed=seed, vary_by_epoch=vary_by_epoch)
        self.sampler = sampler
        self.exemplar_size = int(exemplar_size)
        self.search_size = int(search_size)
        self.context_amount = float(context_amount)
        self.template_jitter = template_jitter or Jitter()
        self.search_jitter = search_jitter or Jitter()
        self.augment = augment or PairAugment()
        self._foreground: dict[str, tuple[float, float, float, float]] = {}

    def pair(self, index: int) -> Pair:
        """The pair item ``index`` is made of (views only, no pixels read)."""
        return self.sampler.sample(self._rng(index))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self.length
        rng = self._rng(index)
        pair = self.sampler.sample(rng)
        with one_torch_thread():
            return self._make(pair, rng)

    # -- one item ---------------------------------------------------------------------

    def _make(self, pair: Pair, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        z, x = self.exemplar_size, self.search_size
        images: dict[str, np.ndarray] = {}
        t_img = _read(pair.template.image, images)
        s_img = _read(pair.search.image, images)
        t_box = self._box(pair.template, t_img)
        s_box = self._box(pair.search, s_img)
        t_side = context_side(t_box, self.context_amount)
        s_side = context_side(s_box, self.context_amount) * x / z
        tj, sj = self.template_jitter, self.search_jitter
        t_mat = jittered_crop_matrix(
            t_box, side=t_side, out_size=z, max_shift=tj.shift, max_scale=tj.scale, rng=rng
        )
        s_mat = jittered_crop_matrix(
            s_box, side=s_side, out_size=x, max_shift=sj.shift, max_scale=sj.scale, rng=rng
        )
        template = warp_image(t_img, t_mat, z, fill=mean_color(t_img))
        search = warp_image(s_img, s_mat, x, fill=mean_color(s_img))
        has_mask = pair.search.segmentation is not None
        if has_mask:
            try:
                full = decode_segmentation(
                    pair.search.segmentation, height=s_img.shape[0], width=s_img.shape[1]
                )
            except (ValueError, TypeError, KeyError) as exc:
                raise InvalidImageError(f"bad mask for {pair.search.image}: {exc}") from exc
            mask = warp_mask(full, s_mat, x)
        else:
            mask = np.zeros((x, x), np.uint8)
        (t_out, t_boxes), (s_out, s_boxes, s_mask) = self.augment(
            (_image(template), _boxes(warp_box(t_box, t_mat, z), z)),
            (_image(search), _boxes(warp_box(s_box, s_mat, x), x), tv_tensors.Mask(mask)),
            seed=int(rng.integers(2**63)),
        )
        return {
            "template": t_out.as_subclass(torch.Tensor).contiguous(),
            "search": s_out.as_subclass(torch.Tensor).contiguous(),
            "template_box": t_boxes.as_subclass(torch.Tensor)[0].float(),
            "search_box": s_boxes.as_subclass(torch.Tensor)[0].float(),
            "search_mask": s_mask.as_subclass(torch.Tensor).contiguous(),
            "has_mask": torch.tensor(has_mask),
            "label": torch.tensor(pair.label, dtype=torch.int64),
            "identity": torch.tensor(identity_code(pair.template.identity), dtype=torch.int64),
        }

    def _box(self, view: View, image: np.ndarray) -> np.ndarray:
        if view.box is not None:
            return np.asarray(view.box, np.float64)
        box = self._foreground.get(view.image)
        if box is None:
            box = self._foreground[view.image] = foreground_box(image)
        return np.asarray(box, np.float64)


def identity_code(identity: tuple) -> int:
    """A stable (process- and run-independent) integer code of an identity tuple."""
    return zlib.crc32(repr(identity).encode("utf-8"))


def _read(path: str, cache: dict[str, np.ndarray]) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB, once per item."""
    # No cv2.setNumThreads() here: called in a forked DataLoader worker it deadlocks
    # (OpenCV 5, pthreads backend), while plain OpenCV calls are fork-safe.
    if path not in cache:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise InvalidImageError(f"cannot read image {path}")
        cache[path] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return cache[path]


def _image(hwc: np.ndarray) -> tv_tensors.Image:
    return tv_tensors.Image(torch.from_numpy(hwc).permute(2, 0, 1).contiguous())


def _boxes(box: np.ndarray, size: int) -> tv_tensors.BoundingBoxes:
    return tv_tensors.BoundingBoxes(
        torch.from_numpy(box).reshape(1, 4), format="XYXY", canvas_size=(size, size)
    )
