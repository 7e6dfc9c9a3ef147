"""Losses against straightforward loop implementations and hand values; perfect
predictions, edge cases (only negatives, all ignored, no masks) and gradient flow (the
real networks: test_losses_networks.py; the embedder's InfoNCE: test_losses_contrastive.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from matcher.errors import InvalidArgumentError, UnknownComponentError
from matcher.recipes import load_recipe
from matcher.train_config import TargetConfig
from tests.trainers.target_helpers import MASK_GEO, RPN_GEO, gen, random_batch
from trainers.losses import LOSSES, LossWeights, compute_loss, loss_weights
from trainers.targets import build_targets

PARAMS = TargetConfig()
ONES = LossWeights(cls=1.0, loc=1.0, mask=1.0, ctr=1.0)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def smooth_l1(d: float, beta: float) -> float:
    d = abs(d)
    if beta == 0 or d >= beta:
        return d - 0.5 * beta
    return 0.5 * d * d / beta


def random_outputs(family: str, targets, *, seed: int = 0) -> dict[str, torch.Tensor]:
    g = gen(seed)
    labels = targets["cls_label"]
    b, a, s, _ = labels.shape
    if family == "siamfc":
        outs = {"response": torch.randn((b, 1, s, s), generator=g)}
    elif family == "siamfcpp":
        outs = {
            "cls": torch.randn((b, 1, s, s), generator=g),
            "ctr": torch.randn((b, 1, s, s), generator=g),
            "offsets": torch.rand((b, 4, s, s), generator=g) * 12 + 1,
        }
    else:
        outs = {
            "cls": torch.randn((b, 2 * a, s, s), generator=g),
            "loc": torch.randn((b, 4 * a, s, s), generator=g) * 0.3,
        }
        if family == "siammask":
            m = MASK_GEO.mask_size
            outs["mask_logits"] = torch.randn((len(targets["mask_positions"]), m, m), generator=g)
    return {k: v.requires_grad_() for k, v in outs.items()}


# -- SiamRPN / SiamMask ----------------------------------------------------------------------


def rpn_loop(cls, loc, labels, loc_target, loc_weight, beta):
    b, a, s, _ = labels.shape
    pos, neg, reg = [], [], 0.0
    for i in range(b):
        for j in range(a):
            for y in range(s):
                for x in range(s):
                    bg, fg = float(cls[i, j, y, x]), float(cls[i, a + j, y, x])
                    lse = math.log(math.exp(bg) + math.exp(fg))
                    if labels[i, j, y, x] == 1:
                        pos.append(lse - fg)
                    elif labels[i, j, y, x] == 0:
                        neg.append(lse - bg)
                    for k in range(4):
                        d = float(loc[i, k * a + j, y, x] - loc_target[i, k, j, y, x])
                        reg += smooth_l1(d, beta) * float(loc_weight[i, j, y, x])
    mean = lambda v: sum(v) / len(v) if v else 0.0  # noqa: E731
    return 0.5 * mean(pos) + 0.5 * mean(neg), reg / b


@pytest.mark.parametrize("beta", [0.0, 0.2])
def test_rpn_loss_matches_a_loop(beta):
    g = gen(1)
    b, a, s = 3, 2, 4
    targets = {
        "cls_label": torch.randint(-1, 2, (b, a, s, s), generator=g),
        "loc_target": torch.randn((b, 4, a, s, s), generator=g) * 0.3,
        "loc_weight": torch.rand((b, a, s, s), generator=g),
    }
    outputs = {
        "cls": torch.randn((b, 2 * a, s, s), generator=g),
        "loc": torch.randn((b, 4 * a, s, s), generator=g) * 0.3,
    }
    params = dataclasses.replace(PARAMS, smooth_l1_beta=beta)
    weights = LossWeights(cls=1.0, loc=1.2, mask=36.0, ctr=1.0)
    got = compute_loss(
        "siamrpn", outputs, targets, geometry=RPN_GEO, params=params, weights=weights
    )
    cls, loc = rpn_loop(
        outputs["cls"],
        outputs["loc"],
        targets["cls_label"],
        targets["loc_target"],
        targets["loc_weight"],
        beta,
    )
    assert set(got) == {"cls", "loc", "total"}
    torch.testing.assert_close(got["cls"], torch.tensor(cls), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["loc"], torch.tensor(loc), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["total"], torch.tensor(cls + 1.2 * loc), rtol=1e-5, atol=1e-6)


def test_rpn_loss_by_hand_on_one_anchor():
    labels = torch.full((1, 1, 1, 1), 1)
    targets = {
        "cls_label": labels,
        "loc_target": torch.tensor([0.5, -0.5, 0.0, 1.0]).reshape(1, 4, 1, 1, 1),
        "loc_weight": torch.ones((1, 1, 1, 1)),
    }
    outputs = {
        "cls": torch.tensor([0.0, math.log(3.0)]).reshape(1, 2, 1, 1),  # p(fg) = 3/4
        "loc": torch.tensor([0.5, 0.0, 0.0, 0.0]).reshape(1, 4, 1, 1),
    }
    got = compute_loss("siamrpn", outputs, targets, geometry=RPN_GEO, params=PARAMS, weights=ONES)
    torch.testing.assert_close(got["cls"], torch.tensor(0.5 * -math.log(0.75)))
    torch.testing.assert_close(got["loc"], torch.tensor(0.5 + 0.0 + 1.0))


def test_siammask_mask_loss_matches_a_loop_and_weights():
    g = gen(2)
    batch = random_batch(seed=3)
    params = dataclasses.replace(PARAMS, pos_iou=0.3, neg_iou=0.2)
    targets = build_targets("siammask", batch, geometry=MASK_GEO, params=params, generator=g)
    n = len(targets["mask_positions"])
    assert n > 0
    outputs = random_outputs("siammask", targets, seed=4)
    weights = LossWeights(cls=1.0, loc=1.2, mask=36.0, ctr=1.0)
    got = compute_loss(
        "siammask", outputs, targets, geometry=MASK_GEO, params=params, weights=weights
    )
    logits, want = outputs["mask_logits"].detach(), targets["mask_targets"]
    total = 0.0
    for x, y in zip(logits.flatten().tolist(), want.flatten().tolist(), strict=True):
        total += -(y * math.log(sigmoid(x)) + (1 - y) * math.log(1 - sigmoid(x)))
    torch.testing.assert_close(got["mask"], torch.tensor(total / logits.numel()), rtol=1e-5, atol=0)
    rpn = compute_loss("siamrpn", outputs, targets, geometry=MASK_GEO, params=params, weights=ONES)
    torch.testing.assert_close(got["cls"], rpn["cls"])
    torch.testing.assert_close(
        got["total"], rpn["cls"] + 1.2 * rpn["loc"] + 36.0 * got["mask"], rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("with_logits", [True, False])
def test_siammask_without_mask_cells_keeps_the_graph(with_logits):
    batch = random_batch()
    batch["has_mask"][:] = False
    targets = build_targets("siammask", batch, geometry=MASK_GEO, params=PARAMS, generator=gen())
    assert targets["mask_positions"].shape == (0, 3) and targets["mask_targets"].shape == (
        0,
        16,
        16,
    )
    outputs = random_outputs("siammask", targets)
    if not with_logits:
        del outputs["mask_logits"]
    got = compute_loss("siammask", outputs, targets, geometry=MASK_GEO, params=PARAMS, weights=ONES)
    assert got["mask"] == 0 and got["mask"].requires_grad
    got["total"].backward()
    assert torch.isfinite(outputs["cls"].grad).all()


# -- SiamFC --------------------------------------------------------------------------------


def test_siamfc_balanced_loss_matches_a_loop():
    g = gen(5)
    labels = torch.randint(0, 2, (2, 1, 5, 5), generator=g)
    response = torch.randn((2, 1, 5, 5), generator=g)
    got = compute_loss(
        "siamfc",
        {"response": response},
        {"cls_label": labels},
        geometry=RPN_GEO,
        params=PARAMS,
        weights=LossWeights(cls=2.0, loc=1.0, mask=1.0, ctr=1.0),
    )
    pairs = list(zip(response.flatten().tolist(), labels.flatten().tolist(), strict=True))
    pos = [-math.log(sigmoid(x)) for x, y in pairs if y == 1]
    neg = [-math.log(1 - sigmoid(x)) for x, y in pairs if y == 0]
    # siamfc-pytorch: weights 1/num_pos and 1/num_neg, normalised to sum 1.
    want = 0.5 * sum(pos) / len(pos) + 0.5 * sum(neg) / len(neg)
    torch.testing.assert_close(got["cls"], torch.tensor(want), rtol=1e-5, atol=0)
    torch.testing.assert_close(got["total"], 2 * got["cls"])


def test_siamfc_only_negatives_is_the_negative_mean():
    response = torch.randn((2, 1, 3, 3), generator=gen(6))
    got = compute_loss(
        "siamfc",
        {"response": response},
        {"cls_label": torch.zeros((2, 1, 3, 3), dtype=torch.long)},
        geometry=RPN_GEO,
        params=PARAMS,
        weights=ONES,
    )
    want = torch.nn.functional.softplus(response).mean()
    torch.testing.assert_close(got["cls"], want)


# -- SiamFC++ ------------------------------------------------------------------------------


def test_siamfcpp_cls_and_ctr_match_loops():
    g = gen(7)
    b, s = 2, 4
    labels = torch.randint(-1, 2, (b, 1, s, s), generator=g)
    ctr_t = torch.rand((b, 1, s, s), generator=g) * (labels == 1)
    outputs = {
        "cls": torch.randn((b, 1, s, s), generator=g),
        "ctr": torch.randn((b, 1, s, s), generator=g),
        "offsets": torch.full((b, 4, s, s), 4.0),
    }
    targets = {
        "cls_label": labels,
        "ctr_target": ctr_t,
        "box_target": torch.tensor([[10.0, 10, 30, 30]] * b),
    }
    params = dataclasses.replace(PARAMS, focal_alpha=0.25, focal_gamma=2.0)
    got = compute_loss("siamfcpp", outputs, targets, geometry=RPN_GEO, params=params, weights=ONES)
    focal, num_pos, ctr_terms = 0.0, 0, []
    for x, c_logit, y, c in zip(
        outputs["cls"].flatten().tolist(),
        outputs["ctr"].flatten().tolist(),
        labels.flatten().tolist(),
        ctr_t.flatten().tolist(),
        strict=True,
    ):
        p = sigmoid(x)
        if y == 1:
            focal += -0.25 * (1 - p) ** 2 * math.log(p)
            num_pos += 1
        elif y == 0:
            focal += -0.75 * p**2 * math.log(1 - p)
        if c != 0:
            q = sigmoid(c_logit)
            bce = -(c * math.log(q) + (1 - c) * math.log(1 - q))
            entropy = -(c * math.log(c) + (1 - c) * math.log(1 - c)) if c < 1 else 0.0
            ctr_terms.append(bce - entropy)
    torch.testing.assert_close(got["cls"], torch.tensor(focal / max(num_pos, 1)), rtol=1e-5, atol=0)
    torch.testing.assert_close(
        got["ctr"], torch.tensor(sum(ctr_terms) / len(ctr_terms)), rtol=1e-5, atol=1e-6
    )


def test_siamfcpp_iou_loss_by_hand():
    # One positive cell, (1, 1) of RPN_GEO, centred on (28, 28); offsets 8 each way give
    # (20, 20, 36, 36): +1 areas 17*17 = 289 and gt (20, 20, 40, 36) 21*17 = 357, overlap 289.
    labels = torch.full((1, 1, 4, 4), -1)
    labels[0, 0, 1, 1] = 1
    offsets = torch.full((1, 4, 4, 4), 3.0)
    offsets[0, :, 1, 1] = 8.0
    outputs = {
        "cls": torch.zeros((1, 1, 4, 4)),
        "ctr": torch.zeros((1, 1, 4, 4)),
        "offsets": offsets,
    }
    targets = {
        "cls_label": labels,
        "ctr_target": torch.zeros((1, 1, 4, 4)),
        "box_target": torch.tensor([[20.0, 20, 40, 36]]),
    }
    weights = LossWeights(cls=1.0, loc=3.0, mask=1.0, ctr=1.0)
    got = compute_loss(
        "siamfcpp", outputs, targets, geometry=RPN_GEO, params=PARAMS, weights=weights
    )
    torch.testing.assert_close(got["loc"], torch.tensor(-math.log(289 / 357)))
    assert got["ctr"] == 0
    torch.testing.assert_close(got["total"], got["cls"] + 3 * got["loc"])


# -- every family ----------------------------------------------------------------------------


def perfect_outputs(family: str, targets) -> dict[str, torch.Tensor]:
    labels = targets["cls_label"]
    sign = torch.where(labels == 1, 40.0, -40.0)
    if family == "siamfc":
        return {"response": sign}
    if family == "siamfcpp":
        ctr = targets["ctr_target"].clamp(1e-6, 1 - 1e-6)
        offsets = torch.where(labels == 1, targets["ltrb_target"], torch.ones(()))
        return {"cls": sign, "ctr": torch.log(ctr / (1 - ctr)), "offsets": offsets}
    b, a, s, _ = labels.shape
    outs = {
        "cls": torch.cat([-sign, sign], dim=1),
        "loc": targets["loc_target"].reshape(b, 4 * a, s, s).clone(),
    }
    if family == "siammask":
        m = targets["mask_targets"]
        outs["mask_logits"] = torch.where(m > 0.5, 40.0, -40.0)
    return outs


@pytest.mark.parametrize("family", LOSSES.names())
def test_perfect_predictions_cost_nothing(family):
    batch = random_batch(seed=8)
    params = dataclasses.replace(PARAMS, pos_iou=0.3, neg_iou=0.2)
    targets = build_targets(family, batch, geometry=MASK_GEO, params=params, generator=gen())
    assert (targets["cls_label"] == 1).any()
    got = compute_loss(
        family,
        perfect_outputs(family, targets),
        targets,
        geometry=MASK_GEO,
        params=params,
        weights=ONES,
    )
    for name, value in got.items():
        assert value.ndim == 0 and value.dtype == torch.float32
        assert abs(float(value)) < 1e-4, (name, float(value))


@pytest.mark.parametrize("family", LOSSES.names())
@pytest.mark.parametrize("case", ["mixed", "only_negatives", "all_ignored"])
def test_losses_are_finite_and_gradients_flow(family, case):
    batch = random_batch(seed=9)
    if case != "mixed":
        batch["label"][:] = 0
    if case == "all_ignored":
        batch["search_box"] = torch.tensor([[300.0, 300, 320, 330]]).expand(4, 4).clone()
    params = dataclasses.replace(PARAMS, pos_iou=0.3, neg_iou=0.2)
    targets = build_targets(family, batch, geometry=MASK_GEO, params=params, generator=gen())
    if case == "all_ignored" and family in ("siamrpn", "siammask", "siamfcpp"):
        assert (targets["cls_label"] == -1).all()
    outputs = random_outputs(family, targets, seed=10)
    got = compute_loss(family, outputs, targets, geometry=MASK_GEO, params=params, weights=ONES)
    for value in got.values():
        assert torch.isfinite(value)
    got["total"].backward()
    for name, out in outputs.items():
        assert out.grad is not None and torch.isfinite(out.grad).all(), name
    main = outputs["response" if family == "siamfc" else "cls"].grad
    assert (main.abs().sum() > 0) == (case != "all_ignored" or family == "siamfc")


def test_loss_weights_from_recipes():
    fcpp = loss_weights(load_recipe("siamfcpp_alexnet").train)
    assert (fcpp.cls, fcpp.loc, fcpp.ctr) == (1.0, 3.0, 1.0)
    mask = loss_weights(load_recipe("siammask_r50").train)
    assert (mask.cls, mask.loc, mask.mask) == (1.0, 1.2, 36.0)


def test_loss_errors():
    targets = build_targets("siamrpn", random_batch(), geometry=MASK_GEO, params=PARAMS)
    outputs = random_outputs("siamrpn", targets)
    with pytest.raises(UnknownComponentError, match="siamfcpp"):
        compute_loss("siamfoo", outputs, targets, geometry=MASK_GEO, params=PARAMS, weights=ONES)
    with pytest.raises(InvalidArgumentError, match="loc"):
        compute_loss(
            "siamrpn",
            {"cls": outputs["cls"]},
            targets,
            geometry=MASK_GEO,
            params=PARAMS,
            weights=ONES,
        )
    bad = {"cls": outputs["cls"][:, :, :-1], "loc": outputs["loc"]}
    with pytest.raises(InvalidArgumentError, match="shape"):
        compute_loss("siamrpn", bad, targets, geometry=MASK_GEO, params=PARAMS, weights=ONES)
