"""``siammatch eval pairs``: trials, metrics on constructed cases, the CLI (the held-out
checks are in ``test_eval_heldout.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import api.cli
import matcher
from matcher.mask_codec import encode_rle
from matcher.structures import Instance, MatchResult
from tests.helpers import clutter_scene, paste, product_image
from trainers.evaluate import pairs_protocol as protocol

# -- a tiny dataset in the synthetic set's layout, built by hand ------------------------

SCENE_HW = (240, 320)
PRODUCTS = {1: "astronaut", 2: "coffee", 3: "rocket", 4: "chelsea"}
# scene id -> [(product id, box xyxy, iscrowd)]
LAYOUT = {
    1: [(1, (20, 30, 120, 130), 0), (2, (180, 60, 280, 160), 0)],
    2: [(3, (40, 100, 140, 200), 0), (1, (200, 20, 300, 120), 0), (4, (150, 150, 170, 170), 1)],
    3: [(2, (110, 70, 210, 170), 0)],
}


def box_mask(box, hw=SCENE_HW) -> np.ndarray:
    mask = np.zeros(hw, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def build_document(layout=LAYOUT, *, seed: int = 424_242) -> dict:
    images, annotations = [], []
    for image_id, items in layout.items():
        images.append(
            {"id": image_id, "file_name": f"{image_id:06d}.png", "height": 240, "width": 320}
        )
        for pid, (x0, y0, x1, y1), crowd in items:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": pid,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": crowd,
                    "segmentation": encode_rle(box_mask((x0, y0, x1, y1))),
                }
            )
    return {
        "info": {"generator": "siammatch.synth", "seed": seed, "num_products": len(PRODUCTS)},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": pid, "name": name} for pid, name in PRODUCTS.items()],
        "products": [
            {"id": pid, "name": name, "catalog": f"catalog/{pid:05d}.png"}
            for pid, name in PRODUCTS.items()
        ],
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Scenes with the products pasted at their boxes; catalog photos on white."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "images").mkdir()
    (root / "catalog").mkdir()
    document = build_document()
    for pid, name in PRODUCTS.items():
        photo = np.full((260, 260, 3), 255, np.uint8)
        photo[30:230, 30:230] = product_image(name)
        Image.fromarray(photo).save(root / "catalog" / f"{pid:05d}.png")
    for image_id, items in LAYOUT.items():
        scene = clutter_scene(*SCENE_HW, seed=image_id)
        for pid, box, _ in items:
            scene = paste(scene, product_image(PRODUCTS[pid]), box)
        Image.fromarray(scene).save(root / "images" / f"{image_id:06d}.png")
    (root / "annotations.json").write_text(json.dumps(document))
    return root


class FakeMatcher:
    """Answers from the truth: the true box of the product (shifted down by ``dy``), and
    a box on absent trials when ``false_positive``."""

    def __init__(self, document, *, dy=0.0, false_positive=False, masks=False):
        self.name = f"fake_dy{dy}"
        self.boxes = {}
        for ann in document["annotations"]:
            x, y, w, h = ann["bbox"]
            self.boxes.setdefault((ann["image_id"], ann["category_id"]), (x, y, x + w, y + h))
        self.scene_ids = {}
        self.dy, self.false_positive, self.masks = dy, false_positive, masks
        self.current = None

    def match(self, reference, scene):
        box = self.boxes.get((self.current, int(reference.id)))
        if box is None:
            instances = (Instance(box=(0, 0, 10, 10), score=0.9),) if self.false_positive else ()
        else:
            shifted = (box[0], box[1] + self.dy, box[2], box[3] + self.dy)
            mask = box_mask(tuple(int(v) for v in shifted)) if self.masks else None
            instances = (Instance(box=shifted, score=0.9, mask=mask),)
        return MatchResult(instances=instances, scene_size=scene.shape[:2])


def run_fake(fake, trials, root):
    """Score a fake matcher trial by trial (it needs to know the scene's id)."""
    outcomes = []
    for trial in trials:
        fake.current = trial.image_id
        outcomes.extend(
            protocol.run_trials(
                fake,
                [trial],
                images_dir=root / "images",
                catalog=protocol.catalog_paths(build_document(), root),
            )
        )
    return outcomes


# -- trials ---------------------------------------------------------------------------


def test_trials_cover_present_products_and_one_absent_per_scene():
    document = build_document()
    trials = protocol.make_trials(document, num_scenes=3, seed=5)
    present = [(t.image_id, t.product_id) for t in trials if t.present]
    assert present == [(1, 1), (1, 2), (2, 1), (2, 3), (3, 2)]  # crowd-only product 4 skipped
    absent = [t for t in trials if not t.present]
    assert [t.image_id for t in absent] == [1, 2, 3]
    for t in absent:
        in_scene = {pid for pid, _, _ in LAYOUT[t.image_id]}
        assert t.product_id not in in_scene
        assert t.gt_boxes.shape == (0, 4)
    first = next(t for t in trials if t.present)
    np.testing.assert_array_equal(first.gt_boxes, [[20, 30, 120, 130]])
    again = protocol.make_trials(document, num_scenes=3, seed=5)
    assert [(t.image_id, t.product_id) for t in again] == [
        (t.image_id, t.product_id) for t in trials
    ]


def test_trials_respect_scene_count_and_exclusions():
    document = build_document()
    trials = protocol.make_trials(document, num_scenes=1, seed=0, exclude_products={2})
    assert {t.image_id for t in trials} == {1}
    assert all(t.product_id != 2 for t in trials)
    assert [t.product_id for t in trials if t.present] == [1]
    with pytest.raises(matcher.InvalidArgumentError):
        protocol.make_trials(document, num_scenes=4, seed=0)
    with pytest.raises(matcher.InvalidArgumentError):
        protocol.make_trials(document, num_scenes=0, seed=0)


# -- metrics --------------------------------------------------------------------------


def test_true_boxes_give_perfect_scores(dataset):
    document = build_document()
    trials = protocol.make_trials(document, num_scenes=3, seed=1)
    summary = protocol.summarise("fake", run_fake(FakeMatcher(document), trials, dataset))
    assert summary.success_rate == 1.0
    assert summary.mean_iou == pytest.approx(1.0)
    assert summary.fp_rate == 0.0
    assert summary.mask_iou is None
    assert (summary.num_present, summary.num_absent) == (5, 3)
    assert summary.latency_ms >= 0.0


def test_shifted_boxes_give_the_expected_iou(dataset):
    document = build_document()
    trials = protocol.make_trials(document, num_scenes=3, seed=1)
    # 100x100 boxes shifted by 40 px (all stay inside the scene): intersection 60*100,
    # union 2*100*100 - 6000.
    expected = 6000 / 14000
    fake = FakeMatcher(document, dy=40.0, false_positive=True, masks=True)
    summary = protocol.summarise("fake", run_fake(fake, trials, dataset))
    assert summary.mean_iou == pytest.approx(expected)
    assert summary.success_rate == 0.0
    assert summary.mask_iou == pytest.approx(expected)
    assert summary.fp_rate == 1.0
    small = FakeMatcher(document, dy=10.0)
    summary = protocol.summarise("fake", run_fake(small, trials, dataset))
    assert summary.mean_iou == pytest.approx(9000 / 11000)
    assert summary.success_rate == 1.0


def test_missed_trials_count_as_zero():
    trial = protocol.Trial(
        image_id=1,
        file_name="x.png",
        product_id=1,
        present=True,
        gt_boxes=np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]]),
        gt_masks=(encode_rle(box_mask((0, 0, 10, 10))), encode_rle(box_mask((20, 20, 40, 40)))),
    )
    nothing = MatchResult(instances=(), scene_size=SCENE_HW)
    miss = protocol.score_trial(trial, nothing, latency_ms=3.0)
    assert (miss.found, miss.iou, miss.mask_iou) == (False, 0.0, 0.0)
    # The best instance is compared with the nearest true instance (the second one).
    mask = box_mask((20, 20, 40, 30))
    hit = protocol.score_trial(
        trial,
        MatchResult(
            instances=(Instance(box=(20.0, 20.0, 40.0, 30.0), score=0.8, mask=mask),),
            scene_size=SCENE_HW,
        ),
        latency_ms=5.0,
    )
    assert hit.iou == pytest.approx(0.5)
    assert hit.mask_iou == pytest.approx(0.5)
    summary = protocol.summarise("m", [miss, hit])
    assert summary.success_rate == 0.5
    assert summary.mean_iou == pytest.approx(0.25)
    assert summary.mask_iou == pytest.approx(0.25)
    assert summary.latency_ms == pytest.approx(4.0)


def test_markdown_table_has_one_row_per_matcher():
    rows = [
        protocol.Summary("a", 0.5, 0.4, 0.3, None, 0.1, 12.0, 10, 2),
        protocol.Summary("b", 1.0, 0.9, 0.8, 0.7, 0.0, 3.5, 10, 2),
    ]
    table = protocol.markdown_table(rows).splitlines()
    assert len(table) == 4
    assert table[2].startswith("| a | 0.500 | 0.400 | – | 0.100 | 12.0 |")
    assert table[3].startswith("| b | 1.000 | 0.900 | 0.700 | 0.000 | 3.5 |")


# -- command line ---------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch):
    """``api.cli.main`` with the ``eval`` commands registered."""
    if "api.cli_eval" not in api.cli.COMMAND_MODULES:
        monkeypatch.setattr(api.cli, "COMMAND_MODULES", (*api.cli.COMMAND_MODULES, "api.cli_eval"))

    def run(args, capsys):
        code = api.cli.main(args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_cli_runs_end_to_end(dataset, tmp_path, cli, capsys):
    report, table = tmp_path / "report.json", tmp_path / "table.md"
    args = [
        "eval",
        "pairs",
        "--data",
        str(dataset),
        "--scenes",
        "3",
        "--seed",
        "3",
        "--matchers",
        "baseline_sift,baseline_template",
        "--output",
        str(report),
        "--markdown",
        str(table),
    ]
    code, out, err = cli(args, capsys)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["trials"] == {"present": 5, "absent": 3}
    assert [m["matcher"] for m in data["matchers"]] == ["baseline_sift", "baseline_template"]
    for row in data["matchers"]:
        assert row["num_present"] == 5 and row["num_absent"] == 3
        # The products are pasted unchanged: both baselines find them.
        assert row["success_rate"] >= 0.8
        assert row["fp_rate"] <= 1 / 3
        assert row["latency_ms"] > 0
    assert data["matchers"][0]["mask_iou"] is not None
    assert data["matchers"][1]["mask_iou"] is None
    assert data["held_out_check"]["seed"] == 424_242
    assert table.read_text() in out
    code, _, _ = cli(args, capsys)
    again = json.loads(report.read_text())
    strip = [{k: v for k, v in m.items() if k != "latency_ms"} for m in again["matchers"]]
    assert strip == [{k: v for k, v in m.items() if k != "latency_ms"} for m in data["matchers"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scenes", "0"], "--scenes"),
        (["--scenes", "9"], "--scenes"),
        (["--matchers", "no_such_recipe"], "no_such_recipe"),
        (["--matchers", "siamfc_pixels:"], "RECIPE:WEIGHTS"),
        (["--matchers", "siamfc_alexnet"], "weights"),
        (["--matchers", "siamfc_pixels:missing.pth"], "missing.pth"),
        (["--output", "/no/such/folder/r.json"], "/no/such/folder"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(dataset, cli, capsys, extra, message):
    args = ["eval", "pairs", "--data", str(dataset), "--matchers", "baseline_template"]
    code, _, err = cli([*args, *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siammatch: error:")
    assert message in lines[0]


def test_cli_refuses_training_data(tmp_path, cli, capsys):
    fake = tmp_path / "tiny-train"
    fake.mkdir()
    (fake / "annotations.json").write_text(json.dumps(build_document(seed=11)))
    code, _, err = cli(
        ["eval", "pairs", "--data", str(fake), "--matchers", "baseline_template"], capsys
    )
    assert code == 2
    assert "seed 11" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(["eval", "pairs", "--data", str(tmp_path / "none")], capsys)
    assert code == 2 and "annotations.json" in err
