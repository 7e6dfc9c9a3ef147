"""Training the Siamese Mask R-CNN: detection episodes (deterministic, every instance of the
category as a target, references from other images, split exclusion), target checks,
the task in the shared loop, and — marked slow — that the tiny recipe learns.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.ops import box_iou

import matcher
from matcher.errors import ConfigError
from matcher.recipes import load_recipe
from tests.helpers import TEST_SEED, spread_line
from tests.trainers.data_layouts import bright, draw, region_box, write_image
from trainers.detection.build import build_episode_dataset, excluded_categories
from trainers.detection.targets import check_targets, collate_episodes
from trainers.tasks import build_task
from trainers.train import main as train_main

TINY = "tiny/siam_mask_rcnn"
SIZE = (96, 128)
# image -> (category, xyxy) of its objects: several instances of a category per image.
LAYOUT = {
    1: [(1, (4, 8, 30, 40)), (1, (40, 8, 66, 40)), (2, (80, 50, 120, 90))],
    2: [(1, (10, 50, 36, 82)), (3, (60, 10, 100, 44))],
    3: [(2, (6, 6, 46, 46)), (2, (60, 6, 100, 46)), (2, (60, 50, 100, 90)), (3, (8, 60, 40, 90))],
    4: [(1, (70, 20, 96, 52)), (1, (100, 20, 126, 52)), (3, (10, 10, 50, 44))],
    5: [(3, (20, 40, 60, 74)), (2, (80, 8, 120, 48))],
}


def _write_set(root: Path) -> Path:
    """A small COCO set after :data:`LAYOUT` (bright boxes on dark noise, polygon masks),
    plus one crowd annotation that must never become a target."""
    images, annotations = [], []
    for image_id, objects in LAYOUT.items():
        name = f"{image_id:04d}.png"
        write_image(root / "images" / name, draw([b for _, b in objects], seed=image_id))
        images.append({"id": image_id, "file_name": name, "height": SIZE[0], "width": SIZE[1]})
        for cat, (x0, y0, x1, y1) in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
                    "iscrowd": 0,
                }
            )
    annotations.append(
        {"id": 99, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "iscrowd": 1}
    )
    document = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)],
    }
    path = root / "annotations.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory) -> Path:
    return _write_set(tmp_path_factory.mktemp("episodes"))


def _recipe(coco_set: Path, *extra: str):
    source = f"{{kind: coco, root: {coco_set.parent / 'images'}, annotations: {coco_set}"
    return load_recipe(
        TINY,
        [
            f"train.data=[{source}, pair_mode: category}}]",
            f"train.val_data=[{source}, pair_mode: category}}]",
            "train.steps_per_epoch=5",
            "train.batch_size=2",
            "train.val_pairs=6",
            "train.workers=1",
            *extra,
        ],
    )


def _dataset(coco_set: Path, *extra: str, split: str = "train"):
    recipe = _recipe(coco_set, *extra)
    return build_episode_dataset(
        recipe.train, reference_size=48, reference_context=0.1, split=split
    )


# -- episodes ----------------------------------------------------------------------------


def test_episodes_are_deterministic_per_seed_epoch_and_index(coco_set):
    first, second = _dataset(coco_set), _dataset(coco_set)
    for index in (0, 3, 7):
        a, b = first[index], second[index]
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    drawn = [(int(first[i]["image_id"]), int(first[i]["category"])) for i in range(10)]
    first.set_epoch(1)
    redrawn = [(int(first[i]["image_id"]), int(first[i]["category"])) for i in range(10)]
    assert drawn != redrawn  # another epoch, other episodes
    val = _dataset(coco_set, split="val")
    before = [val[i]["reference"] for i in range(len(val))]
    val.set_epoch(5)  # validation episodes never change
    assert all(torch.equal(x, val[i]["reference"]) for i, x in enumerate(before))


def test_targets_are_every_instance_of_the_category_and_references_come_from_elsewhere(
    coco_set,
):
    data = _dataset(coco_set)
    seen = set()
    for epoch, index in ((e, i) for e in range(3) for i in range(len(data))):
        data.set_epoch(epoch)
        episode = data.episode(index)
        item = data[index]
        image_id, cat = int(item["image_id"]), int(item["category"])
        seen.add((image_id, cat))
        expected = sorted(b for c, b in LAYOUT[image_id] if c == cat)
        assert sorted(tuple(int(v) for v in box) for box in item["boxes"]) == expected
        assert torch.equal(item["labels"], torch.ones(len(expected), dtype=torch.int64))
        for box, mask in zip(item["boxes"], item["masks"], strict=True):
            np.testing.assert_array_equal(region_box(mask.numpy().astype(bool)), box.numpy())
        assert item["scene"].shape == (3, *SIZE) and item["masks"].shape[1:] == SIZE
        check_targets([{k: item[k] for k in ("boxes", "labels", "masks")}], [item["scene"]])
        (ref,) = episode.references
        assert not ref.image.endswith(f"{image_id:04d}.png")  # another image
        source_id = int(Path(ref.image).stem)
        assert (cat, tuple(int(v) for v in ref.box)) in LAYOUT[source_id]
        assert item["reference"].shape == (1, 3, 48, 48)
        assert bright(item["reference"][0]).mean() > 0.3  # the object fills the crop
    assert len(seen) >= 9  # the draws cover most of the 11 (image, category) pairs


def test_flips_move_boxes_and_masks_with_the_scene(coco_set):
    plain, flipped = _dataset(coco_set), _dataset(coco_set, "train.augment.flip=1.0")
    for index in range(4):
        a, b = plain[index], flipped[index]
        assert torch.equal(b["scene"], a["scene"].flip(-1))
        assert torch.equal(b["masks"], a["masks"].flip(-1))
        assert torch.equal(b["reference"], a["reference"].flip(-1))
        mirrored = torch.stack([SIZE[1] - a["boxes"][:, 2], SIZE[1] - a["boxes"][:, 0]], dim=1)
        torch.testing.assert_close(b["boxes"][:, [0, 2]], mirrored)
        torch.testing.assert_close(b["boxes"][:, [1, 3]], a["boxes"][:, [1, 3]])


def test_excluded_categories_and_split_files(coco_set, tmp_path):
    train = _dataset(coco_set, "train.episodes.exclude_categories=[2]")
    cats = {int(train[i]["category"]) for i in range(len(train))}
    assert cats == {1, 3}
    split = tmp_path / "split.yaml"
    split.write_text("unseen: [1, 3]\n")
    unseen = _dataset(
        coco_set,
        f"train.episodes.exclude_file={split}",
        "train.episodes.val_categories=unseen",
        split="val",
    )
    assert {int(unseen[i]["category"]) for i in range(len(unseen))} <= {1, 3}
    only_train = _dataset(coco_set, f"train.episodes.exclude_file={split}")
    assert {int(only_train[i]["category"]) for i in range(len(only_train))} == {2}
    listed = tmp_path / "list.json"
    listed.write_text("[2, 3]")
    both = _recipe(
        coco_set, f"train.episodes.exclude_file={listed}", "train.episodes.exclude_categories=[1]"
    )
    assert excluded_categories(both.train.episodes) == {1, 2, 3}
    bad = tmp_path / "bad.yaml"
    bad.write_text("unseen: person\n")
    with pytest.raises(ConfigError, match="exclude_file"):
        _dataset(coco_set, f"train.episodes.exclude_file={bad}")
    with pytest.raises(ConfigError, match="no episode"):
        _dataset(coco_set, "train.episodes.exclude_categories=[1, 2, 3]")
    instance = f"{{kind: coco, root: {coco_set.parent / 'images'}, annotations: {coco_set}}}"
    with pytest.raises(ConfigError, match="pair_mode"):
        _dataset(coco_set, f"train.data=[{instance}]")  # pair_mode defaults to instance


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("masks"), "lacks"),
        (lambda t: t.update(boxes=t["boxes"][:, :3]), "boxes"),
        (lambda t: t.update(labels=t["labels"].int()), "labels"),
        (lambda t: t.update(masks=t["masks"][:, :10]), "masks"),
        (lambda t: t.update(boxes=t["boxes"].flip(1)), "x0 < x1"),
        (lambda t: t.update(boxes=t["boxes"] + 200), "outside"),
        (lambda t: t.update(labels=t["labels"] * 0), "background"),
    ],
)
def test_check_targets_refuses_malformed_targets(change, message):
    target = {
        "boxes": torch.tensor([[2.0, 3.0, 20.0, 30.0]]),
        "labels": torch.ones(1, dtype=torch.int64),
        "masks": torch.zeros(1, 40, 50, dtype=torch.uint8),
    }
    scene = torch.zeros(3, 40, 50, dtype=torch.uint8)
    check_targets([dict(target)], [scene])
    change(target)
    with pytest.raises(ValueError, match=message):
        check_targets([target], [scene])


def test_task_batches_losses_and_validation(coco_set):
    torch.manual_seed(0)
    recipe = _recipe(coco_set)
    task = build_task(recipe, torch.device("cpu"))
    assert task.primary_metric == "val_ap50"
    data = task.build_data(split="train", epoch_length=4)
    batch = next(iter(DataLoader(data, batch_size=2, collate_fn=task.collate)))
    assert len(batch["scenes"]) == 2 and batch["references"].shape == (2, 1, 3, 96, 96)
    task.net.train()
    cpu = torch.device("cpu")
    losses = task.losses(task.net, task.to_device(batch, cpu), generator=torch.Generator())
    parts = [v for k, v in losses.items() if k != "total"]
    assert len(parts) == 5 and torch.isfinite(losses["total"])
    torch.testing.assert_close(losses["total"], sum(parts))
    val = task.build_data(split="val", epoch_length=None)
    loader = DataLoader(val, batch_size=3, collate_fn=collate_episodes)
    metrics = task.validate(task.net, loader, cpu)
    assert set(metrics) >= {"val_ap50", "val_mask_ap50", "val_mean_iou"}
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("val_ap50", "val_mask_ap50", "val_mean_iou"))
    assert not task.net.training


# -- it learns ------------------------------------------------------------------------------

# Observed with SIAMMATCH_TEST_SEED=0..4 (constraints.txt, one torch thread, 2-core AMD
# EPYC VM; `python -m tests.seed_spread`), untrained -> trained after 100 steps:
#   held-out AP50 0.000-0.013 -> 0.063-0.293 (seeds: 0.190 0.181 0.293 0.147 0.063),
#   mask AP50 -> 0.069-0.209, last third / first third of the loss 0.293-0.377;
#   55 crowded held-out (scene, product) pairs at score >= 0.05: instances found 0-6 ->
#   5-33, pairs with more than one found 0-1 -> 1-7 (seeds: 2 6 3 7 1).
# The thresholds hold for every seed with a margin of about a third of its smallest value.
STEPS = 100
MIN_AP50 = 0.04
MIN_GAIN = 0.035
MAX_LOSS_RATIO = 0.5
SEVERAL_AT = 0.05
MIN_SEVERAL = 1
THRESHOLDS = (0.05, 0.1, 0.2)  # instance scores at which crowded scenes are counted


def _values(path: Path, key: str) -> list[tuple[int, float]]:
    with open(path) as fh:
        return [(int(r["step"]), float(r["value"])) for r in csv.DictReader(fh) if r["key"] == key]


def _train(out: Path, sets: dict[str, Path], steps: int) -> Path:
    train = f"{{kind: synth, root: {sets['train']}, pair_mode: category}}"
    val = f"{{kind: synth, root: {sets['val']}, pair_mode: category}}"
    code = train_main(
        [TINY, "--out", str(out), "--max-steps", str(steps), "--workers", "1",
         "--no-tensorboard", f"train.data=[{train}]", f"train.val_data=[{val}]",
         "train.val_pairs=40", "train.log_every=10", f"train.val_every={max(steps, 1)}",
         "train.checkpoint_every=0", "train.epochs=1", f"train.steps_per_epoch={max(steps, 1)}",
         f"train.seed={TEST_SEED}"]
    )  # fmt: skip
    assert code == 0
    return out / "metrics.csv"


@pytest.mark.slow
def test_tiny_recipe_learns_to_detect_and_segment_unseen_products(tmp_path, synth_sets):
    untrained = _values(_train(tmp_path / "untrained", synth_sets, 0), "val_ap50")[-1][1]
    metrics = _train(tmp_path / "trained", synth_sets, STEPS)
    trained = _values(metrics, "val_ap50")[-1][1]
    masks = _values(metrics, "val_mask_ap50")[-1][1]
    after = _crowded_hits(tmp_path / "trained" / "model.pth", synth_sets["val"])
    before = _crowded_hits(tmp_path / "untrained" / "model.pth", synth_sets["val"])
    counts = {}
    for threshold in THRESHOLDS:
        for name, hits in (("before", before), ("after", after)):
            found = [_found(pair, threshold) for pair in hits]
            counts[f"{name}_several@{threshold}"] = sum(n > 1 for n in found)
            counts[f"{name}_found@{threshold}"] = sum(found)
    losses = [v for _, v in _values(metrics, "total")]
    head, tail = losses[: len(losses) // 3], losses[-(len(losses) // 3) :]
    loss_ratio = (sum(tail) / len(tail)) / (sum(head) / len(head))
    print(
        spread_line(
            "siam_mask_rcnn", untrained_ap50=untrained, ap50=trained, mask_ap50=masks,
            loss_ratio=loss_ratio, pairs=len(after), **counts,
        )
    )  # fmt: skip
    assert trained >= MIN_AP50 and trained >= untrained + MIN_GAIN, (untrained, trained)
    assert masks >= untrained + MIN_GAIN / 2
    assert loss_ratio < MAX_LOSS_RATIO  # the loss falls
    several = counts[f"after_several@{SEVERAL_AT}"]
    assert several >= MIN_SEVERAL, counts
    assert counts[f"after_found@{SEVERAL_AT}"] > counts[f"before_found@{SEVERAL_AT}"], counts


def _found(hits: list[tuple[float, int]], threshold: float) -> int:
    """Distinct true instances hit by a box scored at least ``threshold``."""
    return len({truth for score, truth in hits if score >= threshold and truth >= 0})


def _crowded_hits(weights: Path, val_root: Path) -> list[list[tuple[float, int]]]:
    """For every held-out scene holding >= 3 instances of a product, matched with a
    reference cropped from another scene: each returned box as ``(score, index of the true
    instance it hits at IoU >= 0.5, or -1)``."""
    m = matcher.load(None, weights)
    doc = json.loads((val_root / "annotations.json").read_text())
    files = {im["id"]: val_root / "images" / im["file_name"] for im in doc["images"]}
    groups: dict[tuple[int, int], list[list[float]]] = {}
    for ann in doc["annotations"]:
        if not ann.get("iscrowd"):
            groups.setdefault((ann["image_id"], ann["category_id"]), []).append(ann["bbox"])
    out = []
    for image_id, cat in sorted(k for k, v in groups.items() if len(v) >= 3):
        other = next(k for k in sorted(groups) if k[1] == cat and k[0] != image_id)
        x, y, w, h = max(groups[other], key=lambda b: b[2] * b[3])
        ref = matcher.Reference.from_image(files[other[0]], (x, y, x + w, y + h))
        result = m.match(ref, files[image_id], max_instances=20, score_threshold=min(THRESHOLDS))
        truth = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in groups[(image_id, cat)]])
        boxes = torch.tensor([inst.box for inst in result.instances]).reshape(-1, 4)
        iou = box_iou(boxes, truth.float())
        pairs = []
        for inst, row in zip(result.instances, iou, strict=True):
            best = int(row.argmax()) if row.numel() and float(row.max()) >= 0.5 else -1
            pairs.append((float(inst.score), best))
        out.append(pairs)
    return out
