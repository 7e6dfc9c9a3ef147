"""Shared test helpers: synthetic scenes from scikit-image's photos, and matchers whose
networks are exact template matchers (so the search machinery can be tested without
trained weights).

The exact template matchers use the parameter-free ``pixel_patches`` backbone (normalised
pixel-patch descriptors). For the SiamFC head that is already a template matcher. For the
depth-wise RPN, :func:`make_rpn_template_matcher` sets the head's weights so that its
foreground logit is the normalised correlation of template and search patches (the
positive/negative-part trick below), with zero box regression and a preference for the
square anchor.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

import matcher
from matcher.inference.anchors import anchor_shapes

TEST_RECIPES = Path(__file__).resolve().parent / "recipes"

# Seed of every test that trains (``train.seed``, initial weights, sampling). The suite runs
# with 0; each training test's threshold comment gives the values observed with
# ``SIAMMATCH_TEST_SEED=0..4`` (``python -m tests.seed_spread`` runs them all).
TEST_SEED = int(os.environ.get("SIAMMATCH_TEST_SEED", "0"))


def spread_line(test: str, **values: float) -> str:
    """The line a training test prints with its measured values, parsed by
    :mod:`tests.seed_spread`: ``SPREAD <test> seed=<s> key=value ...``."""
    parts = " ".join(f"{k}={v:.4f}" for k, v in values.items())
    return f"SPREAD {test} seed={TEST_SEED} {parts}"


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as ``HxWx3`` uint8 RGB."""
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    return np.ascontiguousarray(img[:, :, :3])


def product_image(kind: str = "astronaut") -> np.ndarray:
    """A textured "product": a distinctive square patch of a sample photo."""
    crops = {
        "astronaut": ("astronaut", (30, 170, 230, 370)),
        "coffee": ("coffee", (90, 180, 290, 380)),
        "rocket": ("rocket", (40, 260, 240, 460)),
        "chelsea": ("chelsea", (40, 120, 240, 320)),
    }
    name, (y0, x0, y1, x1) = crops[kind]
    return photo(name)[y0:y1, x0:x1].copy()


def clutter_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A busy background: tiles of other sample photos, coloured shapes and noise."""
    rng = np.random.default_rng(seed)
    scene = np.zeros((height, width, 3), np.uint8)
    sources = [photo(n) for n in ("immunohistochemistry", "hubble_deep_field", "brick", "gravel")]
    tile = 96
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            src = sources[rng.integers(len(sources))]
            sy = rng.integers(0, src.shape[0] - tile)
            sx = rng.integers(0, src.shape[1] - tile)
            patch = src[sy : sy + tile, sx : sx + tile]
            h, w = min(tile, height - y), min(tile, width - x)
            scene[y : y + h, x : x + w] = patch[:h, :w]
    for _ in range(40):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            w, h = int(rng.integers(10, 60)), int(rng.integers(10, 60))
            cv2.rectangle(scene, (cx, cy), (cx + w, cy + h), color, -1)
        else:
            cv2.circle(scene, (cx, cy), int(rng.integers(5, 30)), color, -1)
    noise = rng.normal(0, 6, scene.shape)
    return np.clip(scene.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def paste(scene: np.ndarray, product: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Paste ``product`` resized into integer ``box`` (x0, y0, x1, y1) of a copy of ``scene``."""
    x0, y0, x1, y1 = box
    out = scene.copy()
    interp = cv2.INTER_AREA if (x1 - x0) < product.shape[1] else cv2.INTER_LINEAR
    out[y0:y1, x0:x1] = cv2.resize(product, (x1 - x0, y1 - y0), interpolation=interp)
    return out


def iou(a, b) -> float:
    """IoU of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def siamfc_template_matcher(**overrides: object):
    """The ``siamfc_pixels`` recipe (SiamFC's head on the pixel backbone) with a finer
    pyramid: its boxes are the reference's box rescaled, so the pyramid step bounds their
    precision more than it does for box-regressing heads."""
    items = {"inference.match.scale_step": 1.06, **overrides}
    return matcher.build("siamfc_pixels", overrides=[f"{k}={v}" for k, v in items.items()])


def rpn_template_matcher(**overrides: object):
    """Depth-wise RPN recipe (pixel backbone, 7x7 template crop) with matcher weights."""
    items = [f"{k}={v}" for k, v in overrides.items()]
    m = matcher.build(TEST_RECIPES / "pixels_rpn.yaml", overrides=items)
    model = m.recipe.model
    shapes = anchor_shapes(model.stride, model.anchor.ratios, model.anchor.scales)
    # A square product with no context fills the template.
    side = float(model.exemplar_size) / (1.0 + 2.0 * model.context_amount)
    make_rpn_template_matcher(
        m.net, square_anchor=2, anchor_shapes=shapes, object_size=(side, side)
    )
    return m


def make_rpn_template_matcher(
    net: torch.nn.Module,
    *,
    square_anchor: int,
    anchor_shapes: np.ndarray,
    object_size: tuple[float, float],
):
    """Set a pixel-backbone depth-wise RPN's weights to make it a template matcher.

    With ``f`` the template and ``g`` the search patch descriptors (``c`` channels), the
    kernel branch outputs ``[f+, f-, f+, f-]`` and the search branch ``[g+, g-, g-, g+]``
    (``+``/``-`` the positive and negative parts, which survive the ReLU), so the
    depth-wise products summed with signs ``(+, +, -, -)`` give ``sum f * g``: the
    normalised correlation. The head passes it through (shifted to stay positive across
    its ReLU) as the foreground logit, ``scale * (corr - bias)``, favouring the square
    anchor; the box branch regresses every anchor to ``object_size`` (the product's size
    in template pixels, fixed by the test recipe's geometry) with no shift.
    """
    num_anchors = len(anchor_shapes)
    neck = net.neck.downsample
    c = neck.downsample[0].in_channels
    with torch.no_grad():
        neck.downsample[0].weight.copy_(torch.eye(c)[:, :, None, None])
        _identity_bn(neck.downsample[1])
        for branch, is_cls in ((net.head.cls, True), (net.head.loc, False)):
            hidden = branch.conv_kernel[0].out_channels
            assert hidden == 4 * c
            eye = torch.eye(c)
            kern = torch.zeros(hidden, c, 3, 3)
            srch = torch.zeros(hidden, c, 3, 3)
            kern[0 * c : 1 * c, :, 1, 1] = eye
            kern[1 * c : 2 * c, :, 1, 1] = -eye
            kern[2 * c : 3 * c, :, 1, 1] = eye
            kern[3 * c : 4 * c, :, 1, 1] = -eye
            srch[0 * c : 1 * c, :, 1, 1] = eye
            srch[1 * c : 2 * c, :, 1, 1] = -eye
            srch[2 * c : 3 * c, :, 1, 1] = -eye
            srch[3 * c : 4 * c, :, 1, 1] = eye
            branch.conv_kernel[0].weight.copy_(kern)
            branch.conv_search[0].weight.copy_(srch)
            _identity_bn(branch.conv_kernel[1])
            _identity_bn(branch.conv_search[1])
            mix = torch.zeros(hidden, hidden, 1, 1)
            signs = torch.cat([torch.ones(2 * c), -torch.ones(2 * c)])
            mix[0, :, 0, 0] = signs
            branch.head[0].weight.copy_(mix)
            _identity_bn(branch.head[1])
            shift = 100.0
            branch.head[1].bias.zero_()
            branch.head[1].bias[0] = shift
            out = branch.head[3]
            out.weight.zero_()
            out.bias.zero_()
            if is_cls:
                # Logit 0 at 40 % of a perfect correlation, about 3 at a perfect one.
                cells = (neck.center_size - 2) ** 2
                scale, threshold = 8.0 / cells, 0.4 * cells
                for a in range(num_anchors):
                    fg = num_anchors + a
                    out.weight[fg, 0, 0, 0] = scale
                    bonus = 0.5 if a == square_anchor else 0.0
                    out.bias[fg] = -scale * (shift + threshold) + bonus
            else:
                # Constant size regression: every anchor becomes the template's object.
                for a, (aw, ah) in enumerate(anchor_shapes):
                    out.bias[2 * num_anchors + a] = math.log(object_size[0] / aw)
                    out.bias[3 * num_anchors + a] = math.log(object_size[1] / ah)
    net.eval()


def _identity_bn(bn: torch.nn.BatchNorm2d) -> None:
    bn.weight.fill_(1.0)
    bn.bias.zero_()
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)


def square_box(cx: float, cy: float, side: float) -> tuple[int, int, int, int]:
    half = side / 2
    return (
        math.floor(cx - half),
        math.floor(cy - half),
        math.floor(cx - half) + int(side),
        math.floor(cy - half) + int(side),
    )


def siamfcpp_template_matcher(**overrides: object):
    """SiamFC++ head on the pixel backbone (``tests/recipes/pixels_siamfcpp.yaml``) with
    template-matcher weights (see :func:`make_siamfcpp_template_matcher`)."""
    items = [f"{k}={v}" for k, v in overrides.items()]
    m = matcher.build(TEST_RECIPES / "pixels_siamfcpp.yaml", overrides=items)
    model = m.recipe.model
    # A square product with no context fills the template.
    side = float(model.exemplar_size) / (1.0 + 2.0 * model.context_amount)
    make_siamfcpp_template_matcher(
        m.net, object_size=side, stride=model.stride, exemplar_size=model.exemplar_size
    )
    return m


def make_siamfcpp_template_matcher(
    net: torch.nn.Module, *, object_size: float, stride: int, exemplar_size: int
):
    """Set a pixel-backbone SiamFC++ head's weights to make it a template matcher.

    The adjust convs ``c_z_k``/``c_x`` pass the patch descriptors through unchanged (they
    have no ReLU, so no sign trick is needed), the depth-wise correlation gives per-channel
    products, and the first cls tower conv sums them over channels into the normalised
    correlation ``corr`` (shifted by a constant to cross its ReLU). The classification
    logit is ``scale * (corr - 0.4 * cells)`` (0 at 40 % of a perfect match), the
    centre-ness logit a large constant, and the box a constant square of side
    ``object_size`` (the product's side in template pixels): zero weights into
    ``bbox_offsets_p5`` and ``bi = log(object_size / 2 / stride)``.
    """
    head = net.head
    c = head.c_z_k.conv.in_channels
    assert head.c_z_k.conv.out_channels == c, "the helper needs hidden == in_channels"
    with torch.no_grad():
        adjusts = ((head.c_z_k, True), (head.c_x, True), (head.r_z_k, False), (head.r_x, False))
        for adjust, passes in adjusts:
            adjust.conv.weight.zero_()
            adjust.conv.bias.zero_()
            if passes:
                adjust.conv.weight[:, :, 1, 1] = torch.eye(c)
            _identity_bn(adjust.bn)
        for name in ("cls", "bbox"):
            for conv in head.tower(name):
                conv.conv.weight.zero_()
                conv.conv.bias.zero_()
                assert not hasattr(conv, "bn"), "the helper expects tower convs without BN"
        shift = 100.0
        first = head.tower("cls")[0].conv
        first.weight[0, :, 1, 1] = 1.0
        first.bias[0] = shift
        template = torch.zeros(1, 3, exemplar_size, exemplar_size)
        kernel_cells = net.encode_template(template)[0].shape[-1] ** 2
        scale, threshold = 8.0 / kernel_cells, 0.4 * kernel_cells
        for block in (head.cls_score_p5, head.ctr_score_p5, head.bbox_offsets_p5):
            block.conv.weight.zero_()
            block.conv.bias.zero_()
            _identity_bn(block.bn)
        head.cls_score_p5.conv.weight[0, 0, 0, 0] = scale
        head.cls_score_p5.conv.bias[0] = -scale * (shift + threshold)
        head.ctr_score_p5.conv.bias[0] = 20.0
        head.si.fill_(1.0)
        head.bi.fill_(math.log(object_size / 2 / stride))
    net.eval()


def synthetic_shelf(root: Path, *, seed: int = 41) -> tuple[Path, Path, list[list[float]]]:
    """A scene of the synthetic generator (products the shipped models never trained on:
    no recipe uses ``seed``) and its most visible product.

    Returns:
        ``(catalog photo, scene file, xyxy boxes of that product's instances)``.
    """
    import json

    from trainers.data.synth import generate

    data = Path(generate(root, num_products=8, num_scenes=2, seed=seed, workers=1))
    document = json.loads((data / "annotations.json").read_text())
    image = min(document["images"], key=lambda im: im["id"])
    anns = [
        a
        for a in document["annotations"]
        if a["image_id"] == image["id"] and not a.get("iscrowd", 0)
    ]
    largest = max(anns, key=lambda a: a["area"])
    product = next(p for p in document["products"] if p["id"] == largest["category_id"])
    boxes = [
        [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
        for a in anns
        if a["category_id"] == product["id"]
    ]
    return data / product["catalog"], data / "images" / image["file_name"], boxes


def png_header(width: int, height: int) -> bytes:
    """A PNG holding only its signature and header (IHDR) for a ``width x height`` RGB
    image: what a decompression bomb or a 2,000,000x1 strip shows before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
