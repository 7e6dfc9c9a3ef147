"""SiamMask beyond parity: the warp-back geometry of masks, masks on every match-mode
instance, and the recipes' loading of foolwood/SiamMask files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import matcher
from matcher.inference.siammask_masks import InstanceMasker, cell_window, paste_mask
from matcher.model_config import NetGeometry
from tests.helpers import clutter_scene, paste, product_image

GEOM = {"instance_size": 255, "exemplar_size": 127, "stride": 8, "base_size": 8}


def _disc(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2) <= r * r).astype(np.float32)


@pytest.mark.parametrize(
    "crop_box, cell",
    [
        ((100.0, 50.0, 255.0), (12, 12)),
        ((-40.0, 30.0, 510.0), (5, 18)),
        ((300.5, 7.25, 190.0), (20, 3)),
    ],
)
def test_a_known_mask_lands_on_the_right_scene_pixels(crop_box, cell):
    """A disc predicted at a known cell of a known crop must appear where the geometry
    says: the cell's 127-px window sits at ``(cell - base/2) * stride`` in the crop."""
    row, col = cell
    mask = _disc(127, 80.0, 40.0, 25.0)  # off-centre, so flips and transposes show
    window = cell_window(crop_box, row, col, **GEOM)
    pasted = paste_mask(mask, window, (480, 640)) > 0.5
    # Independent expectation: scene pixel centre -> crop pixel -> window pixel.
    x0, y0, side = crop_box
    s = side / 255.0
    yy, xx = np.mgrid[0:480, 0:640]
    u = (xx + 0.5 - x0) / s - (col - 4) * 8  # window pixel coordinate (continuous)
    v = (yy + 0.5 - y0) / s - (row - 4) * 8
    expected = ((u - 80.0) ** 2 + (v - 40.0) ** 2) <= 25.0**2
    assert expected.sum() > 100
    inter = (pasted & expected).sum()
    assert inter / (pasted | expected).sum() >= 0.9


class _FakeMaskNet(torch.nn.Module):
    """Constructed head outputs: the foreground peaks at a chosen cell near the crop
    centre and the refine output is a known disc."""

    def __init__(self, peak: tuple[int, int], mask: np.ndarray) -> None:
        super().__init__()
        self.peak = peak
        self.mask = torch.from_numpy(mask)
        self.asked: list[tuple[int, int]] = []

    def encode_search(self, x):
        return [x]

    def correlate(self, zk, xk):
        n = xk[0].shape[0]
        cls = torch.zeros(n, 10, 25, 25)
        cls[:, 5:, self.peak[0], self.peak[1]] = 8.0  # foreground logits of all anchors
        return {"cls": cls, "loc": torch.zeros(n, 20, 25, 25)}

    def mask_logits(self, zk, xk, positions):
        self.asked += [(int(r), int(c)) for _, r, c in positions.tolist()]
        logit = torch.where(self.mask > 0.5, 10.0, -10.0)
        return logit.expand(len(positions), -1, -1)


def test_instance_masker_puts_each_instance_mask_where_it_belongs():
    geometry = NetGeometry(
        exemplar_size=127, instance_size=255, stride=8, base_size=8, context_amount=0.5,
        offset=31.0, score_size=25, num_anchors=5,
    )  # fmt: skip
    net = _FakeMaskNet(peak=(13, 11), mask=_disc(127, 63.5, 63.5, 30.0))
    masker = InstanceMasker(geometry=geometry, threshold=0.5)
    scene = np.zeros((400, 600, 3), np.uint8)
    boxes = [(100.0, 80.0, 180.0, 160.0), (350.0, 200.0, 530.0, 320.0)]
    out = masker(net, [torch.zeros(1)], scene, boxes, torch.device("cpu"))
    assert net.asked == [(13, 11), (13, 11)]  # the most confident cell near the centre
    for box, inst in zip(boxes, out, strict=True):
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        side = round(np.sqrt((w + (w + h) / 2) * (h + (w + h) / 2)) * 255 / 127)
        crop = ((x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2, side)
        # Expected: the disc centred in the window of cell (13, 11).
        wx, wy, ws = cell_window(crop, 13, 11, **GEOM)
        s = ws / 127
        yy, xx = np.mgrid[0:400, 0:600]
        expected = ((xx + 0.5 - (wx + 63.5 * s)) ** 2 + (yy + 0.5 - (wy + 63.5 * s)) ** 2) <= (
            30.0 * s
        ) ** 2
        assert inst.mask.shape == (400, 600) and inst.mask.dtype == bool
        assert (inst.mask & expected).sum() / (inst.mask | expected).sum() >= 0.9
        assert inst.cell == (13, 11) and len(inst.polygon) == 4


@pytest.fixture(scope="module")
def siammask():
    """Untrained SiamMask with zero box regression, so its boxes are sane anchors."""
    torch.manual_seed(0)
    m = matcher.build(
        "siammask_r50",
        overrides=["inference.match.min_object_fraction=0.3", "inference.match.scale_step=1.6"],
    )
    with torch.no_grad():
        m.net.head.loc.head[3].weight.zero_()
        m.net.head.loc.head[3].bias.zero_()
    return m


def test_every_match_mode_instance_has_its_mask(siammask):
    scene = paste(clutter_scene(240, 320, seed=1), product_image("coffee"), (100, 60, 190, 150))
    ref = matcher.Reference.from_image(product_image("coffee"))
    result = siammask.match(ref, scene, max_instances=3, score_threshold=0.0)
    assert len(result.instances) == 3
    for inst in result.instances:
        assert inst.mask is not None and inst.mask.shape == (240, 320) and inst.mask.dtype == bool
        assert inst.polygon is not None and len(inst.polygon) == 4
    data = json.loads(result.to_json())
    for item in data["instances"]:
        assert item["mask"]["size"] == [240, 320] and isinstance(item["mask"]["counts"], str)


@pytest.mark.parametrize(
    "name, refine, size", [("siammask_r50", True, 127), ("siammask_r50_base", False, 63)]
)
def test_mask_output_sizes(name, refine, size):
    m = matcher.build(name)
    assert m.net.has_refine is refine and m.net.mask_output_size == size
    with torch.no_grad():
        zk = m.net.encode_template(torch.zeros(1, 3, 127, 127))
        xk = m.net.encode_search(torch.zeros(2, 3, 255, 255))
        logits = m.net.mask_logits(zk, xk, torch.tensor([[0, 3, 4], [1, 24, 0]]))
    assert tuple(logits.shape) == (2, size, size)


def test_cli_draws_masks_and_prints_rle(tmp_path, capsys, siammask):
    from PIL import Image

    from api.cli import main
    from matcher.checkpoints.io import save_checkpoint

    weights = save_checkpoint(tmp_path / "siammask.pth", siammask.net, siammask.recipe.to_dict())
    scene = paste(clutter_scene(240, 320, seed=2), product_image("astronaut"), (40, 40, 140, 140))
    Image.fromarray(scene).save(tmp_path / "scene.png")
    Image.fromarray(product_image("astronaut")).save(tmp_path / "ref.png")
    out_png = tmp_path / "out.png"
    args = [
        "match", str(tmp_path / "ref.png"), str(tmp_path / "scene.png"),
        "--recipe", "siammask_r50", "--weights", str(weights), "--threshold", "0",
        "--max-instances", "2", "-o", str(out_png), "--json",
        "--set", "inference.match.min_object_fraction=0.3",
        "--set", "inference.match.scale_step=1.6",
    ]  # fmt: skip
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["instances"]) == 2
    drawn = np.asarray(Image.open(out_png)).astype(int)
    for item in data["instances"]:
        mask = matcher.mask_codec.decode_rle(item["mask"])
        assert mask.shape == (240, 320)
        if mask.sum() > 50:  # translucent fill: masked pixels change, but stay visible
            inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            changed = np.abs(drawn - scene.astype(int)).sum(axis=2)[inner]
            assert (changed > 0).mean() > 0.9
