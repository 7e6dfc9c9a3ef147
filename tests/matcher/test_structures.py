"""Results serialise to JSON with COCO RLE masks and come back unchanged."""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as coco_mask

from matcher.mask_codec import decode_rle, encode_rle, largest_contour_polygon
from matcher.structures import Instance, MatchResult


def test_rle_round_trip_matches_pycocotools():
    rng = np.random.default_rng(0)
    mask = rng.random((37, 53)) > 0.6
    rle = encode_rle(mask)
    assert rle["size"] == [37, 53] and isinstance(rle["counts"], str)
    assert np.array_equal(decode_rle(rle), mask)
    direct = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert direct["counts"].decode() == rle["counts"]
    assert coco_mask.area(direct) == mask.sum()


def test_result_json_round_trip():
    mask = np.zeros((20, 30), bool)
    mask[5:10, 6:20] = True
    inst = Instance(
        box=(6.0, 5.0, 20.0, 10.0),
        score=0.87,
        mask=mask,
        polygon=((6, 5), (20, 5), (20, 10), (6, 10)),
    )
    result = MatchResult(
        instances=(inst, Instance(box=(0, 0, 3, 3), score=0.1)), scene_size=(20, 30)
    )
    data = json.loads(result.to_json())
    assert data["scene_size"] == {"height": 20, "width": 30}
    back = Instance.from_dict(data["instances"][0])
    assert np.array_equal(back.mask, mask) and back.box == inst.box
    assert data["instances"][1]["mask"] is None
    assert result.best is inst


def test_polygon_of_a_rotated_rectangle():
    import cv2

    mask = np.zeros((100, 100), np.uint8)
    corners = cv2.boxPoints(((50, 50), (40, 20), 30)).astype(np.int32)
    cv2.fillPoly(mask, [corners], 1)
    poly = largest_contour_polygon(mask)
    assert poly is not None and poly.shape == (4, 2)
    assert np.allclose(sorted(poly[:, 0]), sorted(corners[:, 0]), atol=2)
    assert largest_contour_polygon(np.zeros((10, 10), np.uint8)) is None
