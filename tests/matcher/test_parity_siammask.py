"""SiamMask parity with PySOT's ``SiamMaskTracker`` on the ``siammask_r50_l3`` fixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import matcher
from matcher.inference.rpn_tracker import RPNState
from tests.fixtures import (
    TOL_NETWORK,
    TOL_PIXELS,
    TOL_SCORE,
    assert_close,
    dequantised_weights,
    fixture_io,
    needs_fixtures,
)

pytestmark = needs_fixtures
FIXTURE = "siammask_r50_l3"


@pytest.fixture(scope="module")
def io():
    return fixture_io(FIXTURE)


@pytest.fixture(scope="module")
def model(tmp_path_factory, prepared):
    path = tmp_path_factory.mktemp("siammask") / "model.pth"
    torch.save(dequantised_weights(FIXTURE), path)
    return matcher.load("siammask_r50", path, prepare=prepared)


def test_recipe_hyper_parameters(io):
    hp = io["tracker"]["default"]["hparams"]["TRACK"]
    recipe = matcher.load_recipe("siammask_r50")
    track = recipe.inference.track
    assert track.tracker == "siammask" == hp["TYPE"].replace("Tracker", "").lower()
    assert track.penalty_k == pytest.approx(hp["PENALTY_K"])
    assert track.window_influence == pytest.approx(hp["WINDOW_INFLUENCE"])
    assert track.lr == pytest.approx(hp["LR"])
    assert track.mask_threshold == pytest.approx(hp["MASK_THERSHOLD"])
    assert recipe.model.instance_size == hp["INSTANCE_SIZE"]
    assert recipe.model.base_size == hp["BASE_SIZE"]
    assert hp["MASK_OUTPUT_SIZE"] == 127 and recipe.model.mask.refine


def test_network_outputs(io, model):
    inputs, expected = io["network"]["inputs"], io["network"]["outputs"]
    net = model.net
    with torch.no_grad():
        feats = net.features(inputs["search"].float())
        for feat, shape in zip(feats[:3], expected["xf_shapes"], strict=True):
            assert list(feat.shape) == list(shape)
        zk = net.encode_template(inputs["template"].float())
        zf = net.neck([net.backbone(inputs["template"].float())[-1]])[0]
        xk = net.encode_search(inputs["search"].float())
        out = net.correlate(zk, xk)
        dense_corr = net.mask_head.correlate(zk[2], xk[2])[1]
        positions = torch.tensor([[0, y, x] for y, x in expected["positions"]])
        corr = net.mask_correlation(zk, xk, positions)
        mask_at = net.mask_head.head(corr[:, :, None, None])[:, :, 0, 0]
        refine = net.mask_logits(zk, xk, positions)
    assert_close(zf, expected["zf"][0], **TOL_NETWORK, what="zf")
    assert_close(out["cls"], expected["cls"], **TOL_NETWORK, what="cls")
    assert_close(out["loc"], expected["loc"], **TOL_NETWORK, what="loc")
    assert list(dense_corr.shape[-2:]) == list(expected["mask_shape"][-2:])
    for i, (y, x) in enumerate(expected["positions"]):
        assert_close(corr[i], expected["mask_corr_feature_at"][i], **TOL_NETWORK, what="corr")
        assert_close(dense_corr[0, :, y, x], expected["mask_corr_feature_at"][i], **TOL_NETWORK)
        assert_close(mask_at[i], expected["mask_at"][i], **TOL_NETWORK, what="mask_at")
        assert_close(refine[i].reshape(1, -1), expected["refine"][i], **TOL_NETWORK, what="refine")


def _image_mask(ref) -> np.ndarray:
    full = np.zeros(ref["mask_shape"], np.float32)
    oy, ox = ref["mask_crop_origin_yx"]
    crop = ref["mask_crop"].numpy()
    full[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    assert int((full > 0).sum()) == ref["mask_nonzero_count"]
    return full


@pytest.mark.parametrize("mode", ["teacher_forced", "free_run"])
def test_tracker(io, model, mode):
    run = io["tracker"]["default"]
    frames = [np.ascontiguousarray(f.numpy()[:, :, ::-1]) for f in run["frames"]]
    tracker = model.tracker()
    x, y, w, h = run["init_bbox_xywh"]
    tracker.init(frames[0], (x, y, x + w, y + h))
    assert np.array_equal(tracker.z_crop.transpose(2, 0, 1)[None], run["init"]["z_crop"].numpy())
    assert_close(tracker.anchors, run["anchors"], atol=0, rtol=0)
    assert_close(tracker.window, run["window"], atol=1e-12, rtol=0)
    for ref in run["steps"]:
        if mode == "teacher_forced":
            tracker.state = RPNState(
                center=ref["prev_center_pos"].numpy().copy(), size=ref["prev_size"].numpy().copy()
            )
        step = tracker.step(frames[ref["frame_index"]])
        assert np.array_equal(step.x_crop.transpose(2, 0, 1)[None], ref["x_crop"].numpy())
        assert_close(step.outputs["cls"], ref["cls"], **TOL_NETWORK, what="cls")
        assert_close(step.pscore, ref["pscore"], **TOL_SCORE, what="pscore")
        assert step.best_idx == ref["best_idx"]
        assert_close(step.bbox_xywh, ref["bbox"], **TOL_PIXELS, what="bbox")
        assert_close(step.best_score, ref["best_score"], **TOL_SCORE)
        assert_close(tracker.state.center, ref["center_pos"], **TOL_PIXELS)
        assert_close(tracker.state.size, ref["size"], **TOL_PIXELS)
        assert list(step.refine_pos) == list(ref["refine_pos"])
        assert_close(step.mask_logits.reshape(1, -1), ref["refine"], **TOL_NETWORK, what="refine")
        expected_mask = _image_mask(ref)
        assert_close(step.mask_prob, expected_mask, atol=5e-3, rtol=0, what="mask")
        assert_close(step.polygon.reshape(-1), ref["polygon"], atol=1.0, rtol=0, what="polygon")
        inst = step.instance
        assert inst.mask.dtype == bool and inst.mask.shape == tuple(ref["mask_shape"])
        decided = np.abs(expected_mask - 0.15) > 5e-3  # pixels outside the tolerance band
        assert np.array_equal(inst.mask[decided], (expected_mask > 0.15)[decided])
        assert len(inst.polygon) == 4
