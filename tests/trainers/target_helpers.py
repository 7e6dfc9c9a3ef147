"""Shared cases of the target-assignment tests (and the loss tests that build targets): two
hand-sized geometries, the default target settings and small batches of search boxes."""

from __future__ import annotations

import numpy as np
import torch

from matcher.train_config import TargetConfig
from trainers.targets import TargetGeometry

# A 4x4 score map, cells centred on 20, 28, 36, 44, with a 16x16 and a 24x16 anchor.
RPN_GEO = TargetGeometry(
    search_size=65,
    exemplar_size=32,
    stride=8,
    score_size=4,
    offset=20.0,
    anchor_shapes=np.array([[16, 16], [24, 16]], np.float32),
)
# A 9x9 map (stride 4, cells at 3.5 + 4j) on a 40-pixel crop with 16-pixel mask windows.
MASK_GEO = TargetGeometry(
    search_size=40,
    exemplar_size=16,
    stride=4,
    score_size=9,
    offset=3.5,
    anchor_shapes=np.array([[16, 16]], np.float32),
    base_size=2,
    mask_size=16,
)
PARAMS = TargetConfig()


def make_batch(boxes, labels, *, size=65, masks=None, has_mask=None) -> dict[str, torch.Tensor]:
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    num = len(boxes)
    if masks is None:
        masks = torch.zeros((num, size, size), dtype=torch.uint8)
    if has_mask is None:
        has_mask = [False] * num
    return {
        "search_box": boxes,
        "label": torch.tensor(labels, dtype=torch.int64),
        "search_mask": masks,
        "has_mask": torch.tensor(has_mask, dtype=torch.bool),
    }


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_batch(num: int = 4, size: int = 40, seed: int = 0) -> dict[str, torch.Tensor]:
    g = gen(seed)
    centre = torch.rand((num, 2), generator=g) * 20 + 10
    half = torch.rand((num, 2), generator=g) * 8 + 4
    return make_batch(
        torch.cat([centre - half, centre + half], 1).tolist(),
        [1, 0] * (num // 2),
        size=size,
        masks=(torch.rand((num, size, size), generator=g) > 0.5).to(torch.uint8),
        has_mask=[True] * num,
    )
