"""DaSiamRPN-style distractor awareness, in match mode (shelves of look-alikes) and in
tracking mode (distractor memory, local-to-global re-detection)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import matcher
from matcher.inference.distractors import (
    DistractorMemory,
    candidate_probability,
    rescore_by_distractors,
    weighted_distractor_score,
)
from tests.helpers import (
    clutter_scene,
    iou,
    paste,
    product_image,
    rpn_template_matcher,
    siamfc_template_matcher,
)

# -- pure pieces -----------------------------------------------------------------------


def test_rescoring_penalises_candidates_closer_to_another_candidate():
    scores = np.array([0.90, 0.95, 0.93, 0.80], np.float32)
    reference = np.array([0.90, 0.80, 0.80, 0.70], np.float32)  # a_j
    cross = np.array(
        [
            [1.0, 0.70, 0.70, 0.10],
            [0.75, 1.0, 0.98, 0.10],  # candidates 1 and 2 are facings of one look-alike
            [0.75, 0.98, 1.0, 0.10],
            [0.10, 0.10, 0.10, 1.0],
        ],
        np.float32,
    )
    boxes = np.array(
        [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], np.float32
    )
    out = rescore_by_distractors(scores, reference, cross, boxes, weight=1.0)
    assert out[0] == pytest.approx(0.90)  # looks most like the reference: untouched
    assert out[1] == pytest.approx(0.95 - 0.18) and out[2] == pytest.approx(0.93 - 0.18)
    assert out[3] == pytest.approx(0.80)
    assert int(np.argmax(out)) == 0
    # Overlapping near-duplicates are not each other's distractors.
    boxes[2] = boxes[1] + 1
    out = rescore_by_distractors(scores, reference, cross, boxes, weight=1.0)
    assert out[1] == pytest.approx(0.95)


def test_distractor_memory_decays_caps_and_weights():
    mem = DistractorMemory(capacity=3, decay=0.5, min_weight=0.2)
    mem.add([torch.arange(2.0)[:, None]], np.array([1.0, 0.8]))
    mem.age()
    assert mem.weights.tolist() == pytest.approx([0.5, 0.4])
    mem.add([torch.tensor([[7.0], [8.0]])], np.array([0.9, 0.3]))
    assert len(mem) == 3 and mem.templates[0][:, 0].tolist() == [0.0, 1.0, 7.0]
    mem.age()
    mem.age()
    assert mem.templates[0][:, 0].tolist() == [7.0]  # the others faded below 0.2
    sims = np.array([[0.2, 0.9]], np.float32)
    assert weighted_distractor_score(sims, mem.weights).tolist() == pytest.approx([0.2, 0.9])


def test_candidate_probability_reads_every_family():
    rpn = {"cls": torch.zeros(1, 10, 3, 3)}
    rpn["cls"][0, 5 + 2, 1, 1] = 4.0
    prob = candidate_probability(rpn)
    assert prob.shape == (1, 3, 3) and prob[0, 1, 1] == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert candidate_probability({"response": torch.zeros(2, 1, 4, 4)})[0, 0, 0] == 0.5
    fcpp = {"cls": torch.zeros(1, 1, 2, 2), "ctr": torch.zeros(1, 1, 2, 2)}
    assert candidate_probability(fcpp)[0, 0, 0] == pytest.approx(0.25)


# -- match mode: the shelf of look-alikes ----------------------------------------------


def _lookalike_shelf():
    """Five facings of a look-alike (same top 70 %, a different bottom 30 %) and one
    facing of the true product, slightly blurred and dimmed by the shop's lighting."""
    product = product_image("astronaut")
    lookalike = product.copy()
    lookalike[140:] = product_image("coffee")[140:]
    scene = clutter_scene(480, 640, seed=7)
    facings = [
        (30, 60, 150, 180),
        (170, 60, 290, 180),
        (310, 60, 430, 180),
        (30, 250, 150, 370),
        (170, 250, 290, 370),
    ]
    for box in facings:
        scene = paste(scene, lookalike, box)
    true_box = (450, 250, 570, 370)
    worn = cv2.GaussianBlur(product, (0, 0), 3.0).astype(np.float64) * 0.8 + 20
    scene = paste(scene, np.clip(worn, 0, 255).astype(np.uint8), true_box)
    return matcher.Reference.from_image(product), scene, true_box


@pytest.mark.parametrize("make", [siamfc_template_matcher, rpn_template_matcher])
def test_distractor_aware_matching_ranks_the_true_product_first(make):
    reference, scene, true_box = _lookalike_shelf()
    m = make()
    plain = m.match(reference, scene, max_instances=6, score_threshold=0.3)
    aware = m.match(reference, scene, max_instances=6, score_threshold=0.3, distractor_aware=True)
    # Without it a look-alike facing wins on this shelf ...
    assert iou(plain.best.box, true_box) < 0.3
    # ... with it the true product is first and the look-alikes are pushed down.
    assert iou(aware.best.box, true_box) >= 0.5
    assert aware.best.score > aware.instances[1].score
    assert len(aware.instances) >= 2


# -- tracking mode ----------------------------------------------------------------------


def _frames(placements, size=(300, 460), seed=0):
    """Frames on a plain noisy background; ``placements`` lists (image, box) per frame."""
    rng = np.random.default_rng(seed)
    base = rng.normal(128, 6, (*size, 3)).clip(0, 255).astype(np.uint8)
    frames = []
    for items in placements:
        frame = base.copy()
        for image, box in items:
            frame = paste(frame, image, box)
        frames.append(frame)
    return frames


def _track(m, frames, box):
    tracker = m.tracker()
    tracker.init(frames[0], box)
    return [tracker.track(f).box for f in frames[1:]]


def test_distractor_memory_keeps_the_target_through_an_occlusion():
    target = product_image("astronaut")
    lookalike = target.copy()
    lookalike[140:] = product_image("coffee")[140:]
    occluder = np.full_like(target, 140)
    p_box, d_box = (110, 110, 190, 190), (200, 110, 280, 190)
    visible = [(target, p_box), (lookalike, d_box)]
    hidden = [(occluder, p_box), (lookalike, d_box)]
    frames = _frames([visible] * 4 + [hidden] * 2 + [visible] * 3)
    common = ["inference.track.instance_size=383"]
    plain = rpn_template_matcher(**dict(o.split("=") for o in common))
    aware = rpn_template_matcher(
        **dict(o.split("=") for o in common),
        **{
            "inference.track.distractor_aware": "true",
            "inference.track.redetect_threshold": 0.5,
        },
    )
    plain_boxes = _track(plain, frames, p_box)
    aware_boxes = _track(aware, frames, p_box)
    assert iou(plain_boxes[-1], d_box) > 0.5  # the plain tracker moved to the look-alike
    assert iou(aware_boxes[-1], p_box) > 0.6  # the aware one is back on the target
    assert all(iou(b, d_box) < 0.3 for b in aware_boxes)


def test_local_to_global_redetection_finds_a_target_that_reappears_far_away():
    target = product_image("coffee")
    start, later = (60, 110, 140, 190), (330, 110, 410, 190)
    frames = _frames([[(target, start)]] * 3 + [[]] * 7 + [[(target, later)]] * 3)
    plain = rpn_template_matcher()
    aware = rpn_template_matcher(
        **{
            "inference.track.distractor_aware": "true",
            "inference.track.redetect_threshold": 0.5,
        }
    )
    assert iou(_track(plain, frames, start)[-1], later) < 0.3
    assert iou(_track(aware, frames, start)[-1], later) > 0.6
