"""Parity with the original trackers on the shared fixtures.

Each fixture holds weights in the upstream layout and what the upstream code computed from
them: raw network outputs for one input pair and complete tracker runs. We load the
weights through our checkpoint loader (as a user loads a published file), run our network
and trackers, and compare within the fixture README's tolerances. Hyper-parameters come
from our recipes and are checked against the fixture's; anchors, windows and score sizes
are computed by our code and compared.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import matcher
from matcher.inference.rpn_tracker import RPNState
from matcher.inference.siamfc_tracker import SiamFCState
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

PYSOT = {
    "siamrpn_alex_dwxcorr": "siamrpnpp_alexnet",
    "siamrpn_mobilev2_l234_dwxcorr": "siamrpnpp_mobilenetv2",
    "siamrpn_r50_l234_dwxcorr": "siamrpnpp_r50",
}


@pytest.fixture(autouse=True)
def _inference_path(prepared, monkeypatch):
    """Every check here runs on the network as loaded and as prepared for inference."""
    if prepared:
        monkeypatch.setattr(matcher, "load", functools.partial(matcher.load, prepare=True))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """Write a fixture's weights as the upstream project would have saved them."""
    cache: dict[str, str] = {}

    def make(name: str) -> str:
        if name not in cache:
            path = tmp_path_factory.mktemp("weights") / f"{name}.pth"
            torch.save(dequantised_weights(name), path)
            cache[name] = str(path)
        return cache[name]

    return make


def _bgr_frames_as_rgb(frames) -> list[np.ndarray]:
    return [np.ascontiguousarray(f.numpy()[:, :, ::-1]) for f in frames]


def _chw(crop: np.ndarray) -> np.ndarray:
    return crop.transpose(2, 0, 1)[None]


# -- PySOT -----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(PYSOT))
def test_pysot_network_outputs(fixture, weights_file):
    io = fixture_io(fixture)
    m = matcher.load(PYSOT[fixture], weights_file(fixture))
    inputs, expected = io["network"]["inputs"], io["network"]["outputs"]
    with torch.no_grad():
        zf = m.net.features(inputs["template"].float())
        zk = m.net.head.encode_template(zf)
        out = m.net.correlate(zk, m.net.encode_search(inputs["search"].float()))
    assert len(zf) == len(expected["zf"])
    for ours, ref in zip(zf, expected["zf"], strict=True):
        assert_close(ours, ref, **TOL_NETWORK, what="zf")
    assert_close(out["cls"], expected["cls"], **TOL_NETWORK, what="cls")
    assert_close(out["loc"], expected["loc"], **TOL_NETWORK, what="loc")


@pytest.mark.parametrize("fixture", sorted(PYSOT))
def test_pysot_recipe_hyper_parameters(fixture):
    hp = fixture_io(fixture)["tracker"]["default"]["hparams"]
    recipe = matcher.load_recipe(PYSOT[fixture])
    track, model = recipe.inference.track, recipe.model
    assert track.penalty_k == pytest.approx(hp["TRACK"]["PENALTY_K"])
    assert track.window_influence == pytest.approx(hp["TRACK"]["WINDOW_INFLUENCE"])
    assert track.lr == pytest.approx(hp["TRACK"]["LR"])
    assert model.instance_size == hp["TRACK"]["INSTANCE_SIZE"]
    assert model.base_size == hp["TRACK"]["BASE_SIZE"]
    assert model.exemplar_size == hp["TRACK"]["EXEMPLAR_SIZE"]
    assert model.context_amount == pytest.approx(hp["TRACK"]["CONTEXT_AMOUNT"])
    assert model.stride == hp["ANCHOR"]["STRIDE"]
    assert list(model.anchor.ratios) == pytest.approx(hp["ANCHOR"]["RATIOS"])
    assert list(model.anchor.scales) == pytest.approx(hp["ANCHOR"]["SCALES"])


def _check_rpn_step(step, ref, state):
    assert np.array_equal(_chw(step.x_crop), ref["x_crop"].numpy()), "search crop differs"
    assert_close(step.outputs["cls"], ref["cls"], **TOL_NETWORK, what="cls")
    assert_close(step.outputs["loc"], ref["loc"], **TOL_NETWORK, what="loc")
    assert_close(step.pscore, ref["pscore"], **TOL_SCORE, what="pscore")
    assert step.best_idx == ref["best_idx"]
    assert_close(step.bbox_xywh, ref["bbox"], **TOL_PIXELS, what="bbox")
    assert_close(step.best_score, ref["best_score"], **TOL_SCORE, what="best_score")
    assert_close(state.center, ref["center_pos"], **TOL_PIXELS, what="center_pos")
    assert_close(state.size, ref["size"], **TOL_PIXELS, what="size")
    x, y, w, h = ref["bbox"]
    assert_close(step.instance.box, (x, y, x + w, y + h), **TOL_PIXELS, what="instance box")


@pytest.mark.parametrize("fixture", sorted(PYSOT))
@pytest.mark.parametrize("mode", ["teacher_forced", "free_run"])
def test_pysot_tracker(fixture, mode, weights_file):
    run = fixture_io(fixture)["tracker"]["default"]
    assert run["channel_order"] == "BGR"
    frames = _bgr_frames_as_rgb(run["frames"])
    m = matcher.load(PYSOT[fixture], weights_file(fixture))
    tracker = m.tracker()
    x, y, w, h = run["init_bbox_xywh"]
    tracker.init(frames[0], (x, y, x + w, y + h))
    init = run["init"]
    assert np.array_equal(_chw(tracker.z_crop), init["z_crop"].numpy()), "template crop differs"
    assert_close(tracker.channel_average, init["channel_average"], atol=1e-9, rtol=0)
    assert_close(tracker.state.center, init["center_pos"], **TOL_PIXELS)
    assert_close(tracker.state.size, init["size"], **TOL_PIXELS)
    assert tracker.score_size == run["score_size"]
    assert_close(tracker.anchors, run["anchors"], atol=0, rtol=0, what="anchors")
    assert_close(tracker.window, run["window"], atol=1e-12, rtol=0, what="window")
    for ref in run["steps"]:
        if mode == "teacher_forced":
            tracker.state = RPNState(
                center=ref["prev_center_pos"].numpy().copy(), size=ref["prev_size"].numpy().copy()
            )
        step = tracker.step(frames[ref["frame_index"]])
        _check_rpn_step(step, ref, tracker.state)


# -- DaSiamRPN -------------------------------------------------------------------------


def test_dasiamrpn_network_outputs(weights_file):
    io = fixture_io("dasiamrpn_vot")
    m = matcher.load("siamrpn_alexnet_upchannel", weights_file("dasiamrpn_vot"))
    inputs, expected = io["network"]["inputs"], io["network"]["outputs"]
    with torch.no_grad():
        cls_k, loc_k = m.net.encode_template(inputs["template"].float())
        out = m.net.correlate([cls_k, loc_k], m.net.encode_search(inputs["search"].float()))
    # temple(): conv output channel a*256 + c becomes kernel [a, c].
    assert_close(loc_k.reshape(20, 256, 4, 4), expected["r1_kernel"], **TOL_NETWORK, what="r1")
    assert_close(cls_k.reshape(10, 256, 4, 4), expected["cls1_kernel"], **TOL_NETWORK, what="c1")
    assert_close(out["loc"], expected["delta"], **TOL_NETWORK, what="delta")
    assert_close(out["cls"], expected["score"], **TOL_NETWORK, what="score")


def _dasiamrpn_matcher(run_name, run, weights):
    if run_name == "otb":
        return matcher.load("siamrpn_alexnet_upchannel_otb", weights)
    if run_name == "vot":
        return matcher.load("siamrpn_alexnet_upchannel", weights)
    cfg = run["net_cfg"]  # the SiamRPNBIG tracker settings on the VOT-sized network
    return matcher.load(
        "siamrpn_alexnet_upchannel",
        weights,
        overrides=[
            f"inference.track.lr={cfg['lr']}",
            f"inference.track.window_influence={cfg['window_influence']}",
            f"inference.track.penalty_k={cfg['penalty_k']}",
            "inference.track.adaptive=true",
        ],
    )


@pytest.mark.parametrize("run_name", ["vot", "otb", "big_cfg_adaptive"])
@pytest.mark.parametrize("mode", ["teacher_forced", "free_run"])
def test_dasiamrpn_tracker(run_name, mode, weights_file):
    run = fixture_io("dasiamrpn_vot")["tracker"][run_name]
    m = _dasiamrpn_matcher(run_name, run, weights_file("dasiamrpn_vot"))
    track_cfg = m.recipe.inference.track
    assert track_cfg.lr == pytest.approx(run["net_cfg"]["lr"])
    assert track_cfg.window_influence == pytest.approx(run["net_cfg"]["window_influence"])
    assert track_cfg.penalty_k == pytest.approx(run["net_cfg"]["penalty_k"])
    assert track_cfg.adaptive == run["net_cfg"]["adaptive"]
    frames = _bgr_frames_as_rgb(run["frames"])
    (cx, cy), (w, h) = run["init_target_pos"], run["init_target_sz"]
    tracker = m.tracker()
    tracker.init(frames[0], (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    init = run["init"]
    assert tracker.score_size == int(run["tracker_config"]["score_size"])
    assert tracker.instance_size == run["tracker_config"]["instance_size"]
    assert np.array_equal(_chw(tracker.z_crop), init["z_crop"].numpy())
    assert_close(tracker.anchors, init["anchor"], atol=0, rtol=0, what="anchors")
    assert_close(tracker.window, init["window"], atol=1e-12, rtol=0, what="window")
    assert_close(tracker.channel_average, init["avg_chans"], atol=1e-9, rtol=0)
    for ref in run["steps"]:
        if mode == "teacher_forced":
            tracker.state = RPNState(
                center=ref["prev_target_pos"].numpy().copy(),
                size=ref["prev_target_sz"].numpy().copy(),
            )
        step = tracker.step(frames[ref["frame_index"]])
        if "x_crop" in ref:
            assert np.array_equal(_chw(step.x_crop), ref["x_crop"].numpy())
        assert_close(step.outputs["loc"], ref["delta"], **TOL_NETWORK, what="delta")
        assert_close(step.outputs["cls"], ref["score"], **TOL_NETWORK, what="score")
        assert_close(step.pscore, ref["pscore"], **TOL_SCORE, what="pscore")
        assert step.best_idx == ref["best_idx"]
        assert_close(step.best_score, ref["best_score"], **TOL_SCORE, what="best_score")
        assert_close(tracker.state.center, ref["target_pos"], **TOL_PIXELS, what="target_pos")
        assert_close(tracker.state.size, ref["target_sz"], **TOL_PIXELS, what="target_sz")
        assert_close(step.bbox_xywh, ref["rect_xywh"], **TOL_PIXELS, what="rect")


# -- SiamFC ----------------------------------------------------------------------------


def test_siamfc_network_outputs(weights_file):
    io = fixture_io("siamfc_alexnet")
    m = matcher.load("siamfc_alexnet", weights_file("siamfc_alexnet"))
    inputs, expected = io["network"]["inputs"], io["network"]["outputs"]
    assert inputs["channel_order"] == "RGB"
    with torch.no_grad():
        kernel = m.net.features(inputs["template"].float())[0]
        xf = m.net.encode_search(inputs["search"].float())
        response = m.net.correlate([kernel], xf)["response"]
    assert list(xf[0].shape) == list(expected["search_feature_shape"])
    assert_close(kernel, expected["kernel"], **TOL_NETWORK, what="kernel")
    assert_close(response, expected["response"], **TOL_NETWORK, what="response")


def test_siamfc_recipe_hyper_parameters():
    hp = fixture_io("siamfc_alexnet")["tracker"]["default"]["hparams"]
    recipe = matcher.load_recipe("siamfc_alexnet")
    track, model = recipe.inference.track, recipe.model
    assert model.head.out_scale == pytest.approx(hp["out_scale"])
    assert model.exemplar_size == hp["exemplar_sz"]
    assert model.instance_size == hp["instance_sz"]
    assert model.context_amount == pytest.approx(hp["context"])
    assert model.stride == hp["total_stride"]
    assert track.scale_num == hp["scale_num"]
    assert track.scale_step == pytest.approx(hp["scale_step"])
    assert track.scale_lr == pytest.approx(hp["scale_lr"])
    assert track.scale_penalty == pytest.approx(hp["scale_penalty"])
    assert track.window_influence == pytest.approx(hp["window_influence"])
    assert track.response_up == hp["response_up"]


@pytest.mark.parametrize("mode", ["teacher_forced", "free_run"])
def test_siamfc_tracker(mode, weights_file):
    run = fixture_io("siamfc_alexnet")["tracker"]["default"]
    assert run["channel_order"] == "RGB"
    frames = [f.numpy() for f in run["frames"]]
    m = matcher.load("siamfc_alexnet", weights_file("siamfc_alexnet"))
    tracker = m.tracker()
    left, top, w, h = run["init_box_ltwh_1based"]
    tracker.init(frames[0], (left - 1, top - 1, left - 1 + w, top - 1 + h))
    init = run["init"]
    assert np.array_equal(_chw(tracker.z_crop), init["z_crop"].numpy())
    assert_close(tracker.state.center_yx, init["center_yx"], **TOL_PIXELS)
    assert_close(tracker.state.target_sz_hw, init["target_sz_hw"], **TOL_PIXELS)
    assert_close(tracker.state.z_sz, init["z_sz"], **TOL_PIXELS)
    assert_close(tracker.state.x_sz, init["x_sz"], **TOL_PIXELS)
    assert_close(tracker.avg_color, init["avg_color"], atol=1e-9, rtol=0)
    assert_close(tracker.scale_factors, init["scale_factors"], atol=1e-12, rtol=0)
    assert tracker.upscale_sz == init["upscale_sz"]
    assert tracker.hann_window.sum() == pytest.approx(init["hann_window_sum"])
    for ref in run["steps"]:
        if mode == "teacher_forced":
            prev = ref["prev"]
            tracker.state = SiamFCState(
                center_yx=prev["center_yx"].numpy().copy(),
                target_sz_hw=prev["target_sz_hw"].numpy().copy(),
                z_sz=np.float32(prev["z_sz"]) if ref["frame_index"] == 1 else prev["z_sz"],
                x_sz=np.float32(prev["x_sz"]) if ref["frame_index"] == 1 else prev["x_sz"],
            )
        step = tracker.step(frames[ref["frame_index"]])
        assert np.array_equal(step.x_crops.transpose(0, 3, 1, 2), ref["x_crops"].numpy())
        assert_close(step.responses, ref["responses"], **TOL_NETWORK, what="responses")
        assert_close(step.upsampled_peaks, ref["responses_up_peaks"], **TOL_NETWORK, what="peaks")
        assert step.scale_id == ref["scale_id"]
        assert list(step.peak_loc_yx) == list(ref["peak_loc_yx"])
        if "response_up_chosen" in ref:
            assert_close(step.response_up, ref["response_up_chosen"], **TOL_NETWORK)
        assert_close(step.box_ltwh_1based, ref["box_ltwh_1based"], **TOL_PIXELS, what="box")
        st = tracker.state
        assert_close(st.center_yx, ref["center_yx"], **TOL_PIXELS, what="center")
        assert_close(st.target_sz_hw, ref["target_sz_hw"], **TOL_PIXELS, what="size")
        assert_close(st.z_sz, ref["z_sz"], **TOL_PIXELS, what="z_sz")
        assert_close(st.x_sz, ref["x_sz"], **TOL_PIXELS, what="x_sz")
        left1, top1, bw, bh = ref["box_ltwh_1based"].tolist()
        assert_close(
            step.instance.box, (left1 - 1, top1 - 1, left1 - 1 + bw, top1 - 1 + bh), **TOL_PIXELS
        )
