"""Parity with video_analyst's SiamFC++ on the shared fixtures (README sections 2.2, 5, 6).

The fixture weights are saved as video_analyst saves a ``SiamTrack`` state dict and loaded
through ``matcher.load`` (strictly, through the ``video_analyst`` key map). We compare
every network output for the fixture's input pair, the tracker's init, each of its four
steps teacher-forced (the state set to the fixture's ``prev_target_pos``/``prev_target_sz``
first, because the sub-pixel crops make free runs chaotic, README section 5), and the
one-shot detector's run, within the README's tolerances. Hyper-parameters come from our
recipes and are checked against the fixture's; score sizes, offsets, windows and cell
centres are computed by our code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import matcher
from matcher.inference.point_decoder import cell_centers, point_boxes
from matcher.inference.siamfcpp_tracker import SiamFCppState
from matcher.model_config import score_offset, score_size
from matcher.models.heads.xcorr import xcorr_depthwise
from tests.fixtures import (
    TOL_NETWORK,
    TOL_PIXELS,
    TOL_SCORE,
    assert_close,
    dequantised_weights,
    fixture_io,
    fixture_keys,
    needs_fixtures,
)

pytestmark = needs_fixtures

#: fixture -> recipe
FIXTURES = {"siamfcpp_alexnet": "siamfcpp_alexnet", "siamfcpp_googlenet": "siamfcpp_googlenet"}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A fixture's weights written as video_analyst saves a model (``.pkl``, raw dict)."""
    cache: dict[str, str] = {}

    def make(name: str) -> str:
        if name not in cache:
            path = tmp_path_factory.mktemp("weights") / f"{name}.pkl"
            torch.save(dequantised_weights(name), path)
            cache[name] = str(path)
        return cache[name]

    return make


@pytest.fixture(scope="module")
def loaded(weights_file, prepared):
    cache: dict[tuple[str, str], matcher.SiameseMatcher] = {}

    def make(fixture: str, tracker: str = "siamfcpp") -> matcher.SiameseMatcher:
        key = (fixture, tracker)
        if key not in cache:
            cache[key] = matcher.load(
                FIXTURES[fixture],
                weights_file(fixture),
                overrides=[f"inference.track.tracker={tracker}"],
                prepare=prepared,
            )
        return cache[key]

    return make


def _rgb(image: torch.Tensor) -> np.ndarray:
    """A fixture's BGR frame as the RGB array a user passes."""
    return np.ascontiguousarray(image.numpy()[:, :, ::-1])


def _rows(t: torch.Tensor) -> torch.Tensor:
    """``(N, C, S, S)`` -> video_analyst's ``(N, S*S, C)``."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1])


# -- layout ------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_every_published_key_is_loaded(fixture, weights_file):
    keys = fixture_keys(fixture)
    weights = dequantised_weights(fixture)
    assert list(weights) == list(keys)
    # the network as loaded (prepared, its batch norms are folded into the convolutions)
    ours = matcher.load(FIXTURES[fixture], weights_file(fixture)).net.state_dict()
    renamed = {
        "basemodel.": "backbone.",
        "c_z_k.": "head.c_z_k.",
        "r_z_k.": "head.r_z_k.",
        "c_x.": "head.c_x.",
        "r_x.": "head.r_x.",
        "head.": "head.",
    }
    consumed = set()
    for key, spec in keys.items():
        prefix = next(p for p in renamed if key.startswith(p))
        our_key = renamed[prefix] + key[len(prefix) :]
        assert list(ours[our_key].shape) == spec["shape"], key
        assert torch.equal(ours[our_key], weights[key].to(ours[our_key].dtype)), key
        consumed.add(our_key)
    assert consumed == set(ours)


# -- network -----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_network_outputs(fixture, loaded):
    io = fixture_io(fixture)
    m = loaded(fixture)
    model = m.recipe.model
    inputs, expected = io["network"]["inputs"], io["network"]["outputs"]
    with torch.no_grad():
        f_z = m.net.features(inputs["template"].float())
        f_x = m.net.features(inputs["search"].float())
        zk = m.net.head.encode_template(f_z)
        xk = m.net.head.encode_search(f_x)
        c_out = xcorr_depthwise(xk[0], zk[0])
        out = m.net.correlate(zk, xk)
    size, offset = score_size(model, model.instance_size), score_offset(model)
    assert size == io["model_hparams"]["head"]["score_size"]
    assert offset == io["model_hparams"]["head"]["score_offset"]
    assert list(f_x[0].shape) == list(expected["shapes"]["f_x"])
    assert list(c_out.shape) == list(expected["shapes"]["c_out"])
    assert_close(f_z[0], expected["f_z"], **TOL_NETWORK, what="f_z")
    assert_close(zk[0], expected["c_z_k"], **TOL_NETWORK, what="c_z_k")
    assert_close(zk[1], expected["r_z_k"], **TOL_NETWORK, what="r_z_k")
    assert_close(_rows(out["cls"]), expected["cls_logits"], **TOL_NETWORK, what="cls")
    assert_close(_rows(out["ctr"]), expected["ctr_logits"], **TOL_NETWORK, what="ctr")
    assert_close(out["offsets"], expected["offsets_ltrb"], **TOL_NETWORK, what="offsets")
    cls_prob, ctr_prob = torch.sigmoid(out["cls"]), torch.sigmoid(out["ctr"])
    assert_close(_rows(cls_prob), expected["cls_prob"], **TOL_SCORE, what="cls_prob")
    assert_close(_rows(ctr_prob), expected["ctr_prob"], **TOL_SCORE, what="ctr_prob")
    assert_close(_rows(cls_prob * ctr_prob), expected["score"], **TOL_SCORE, what="score")
    boxes = point_boxes(out["offsets"], offset=offset, stride=model.stride)
    assert_close(boxes, expected["box_xyxy"], **TOL_PIXELS, what="box_xyxy")
    centers = cell_centers(size, offset=offset, stride=model.stride)
    grid = torch.stack(torch.meshgrid(centers, centers, indexing="xy"), dim=-1).reshape(1, -1, 2)
    assert_close(grid, expected["fm_ctr"], atol=0, rtol=0, what="fm_ctr")
    head = io["model_hparams"]
    assert_close(m.net.head.si.detach(), head["si"], atol=0, rtol=0, what="si")
    assert_close(m.net.head.bi.detach(), head["bi"], atol=0, rtol=0, what="bi")


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_recipe_hyper_parameters(fixture):
    io = fixture_io(fixture)
    hp = io["tracker"]["default"]["hparams"]
    head = io["model_hparams"]["head"]
    recipe = matcher.load_recipe(FIXTURES[fixture])
    track, model = recipe.inference.track, recipe.model
    assert track.lr == hp["test_lr"]
    assert track.window_influence == hp["window_influence"]
    assert track.penalty_k == hp["penalty_k"]
    assert hp["windowing"] == "cosine"
    assert model.exemplar_size == hp["z_size"]
    assert model.instance_size == hp["x_size"] == head["x_size"]
    assert model.stride == hp["total_stride"] == head["total_stride"]
    assert model.context_amount == hp["context_amount"]
    assert model.head.num_convs == hp["num_conv3x3"] == head["num_conv3x3"]
    assert str(list(model.head.conv_bn)) == head["head_conv_bn"]
    assert model.head.hidden == head["head_width"]
    assert score_size(model, model.instance_size) == hp["score_size"]
    assert score_offset(model) == hp["score_offset"]
    assert hp["min_w"] == hp["min_h"] == 10  # SiamFCppTrackParams.min_size


def test_otb_recipe_hyper_parameters():
    """video_analyst test/otb/siamfcpp_alexnet-otb.yaml on the same network."""
    vot, otb = matcher.load_recipe("siamfcpp_alexnet"), matcher.load_recipe("siamfcpp_alexnet_otb")
    assert otb.model == vot.model
    assert otb.inference.track.lr == 0.5249642198880932
    assert otb.inference.track.window_influence == 0.23153228172839774
    assert otb.inference.track.penalty_k == 0.05413758904760692


# -- tracker -----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_tracker_teacher_forced(fixture, loaded):
    run = fixture_io(fixture)["tracker"]["default"]
    assert run["channel_order"] == "BGR" and run["tracker_class"] == "SiamFCppTracker"
    frames = [_rgb(f) for f in run["frames"]]
    tracker = loaded(fixture).tracker()
    x, y, w, h = run["init_rect_xywh"]
    tracker.init(frames[0], (x, y, x + w, y + h))
    init = run["init"]
    assert np.array_equal(tracker.z_crop, init["z_crop"].numpy()), "template crop differs"
    assert_close(tracker.avg_chans, init["avg_chans"], atol=1e-9, rtol=0, what="avg_chans")
    assert_close(tracker.window, init["window"], atol=1e-12, rtol=0, what="window")
    assert tracker.state.target_pos.dtype == np.float32
    assert_close(tracker.state.target_pos, init["target_pos"], **TOL_PIXELS, what="target_pos")
    assert_close(tracker.state.target_sz, init["target_sz"], **TOL_PIXELS, what="target_sz")
    for ref in run["steps"]:
        tracker.state = SiamFCppState(
            target_pos=ref["prev_target_pos"].numpy().copy(),
            target_sz=ref["prev_target_sz"].numpy().copy(),
        )
        step = tracker.step(frames[ref["frame_index"]])
        what = f"step {ref['frame_index']}"
        assert np.array_equal(step.x_crop, ref["x_crop"].numpy()), f"{what}: search crop differs"
        assert float(step.scale_x) == ref["scale_x"]
        assert_close(step.score, ref["score"], **TOL_SCORE, what=f"{what} score")
        assert_close(step.cls_prob, ref["cls"][:, 0], **TOL_SCORE, what=f"{what} cls")
        assert_close(step.ctr_prob, ref["ctr"][:, 0], **TOL_SCORE, what=f"{what} ctr")
        assert_close(step.all_box, ref["all_box"], **TOL_PIXELS, what=f"{what} all_box")
        assert_close(step.penalty, ref["penalty"], **TOL_SCORE, what=f"{what} penalty")
        assert_close(step.pscore, ref["pscore"], **TOL_SCORE, what=f"{what} pscore")
        assert step.best_idx == ref["best_idx"], what
        assert step.bbox_pred_in_crop.tolist() == ref["bbox_pred_in_crop"].tolist(), what
        assert_close(step.rect_xywh, ref["rect_xywh"], **TOL_PIXELS, what=f"{what} rect")
        state = tracker.state
        assert_close(state.target_pos, ref["target_pos"], **TOL_PIXELS, what=f"{what} pos")
        assert_close(state.target_sz, ref["target_sz"], **TOL_PIXELS, what=f"{what} size")
        rx, ry, rw, rh = ref["rect_xywh"].tolist()
        assert_close(step.instance.box, (rx, ry, rx + rw, ry + rh), **TOL_PIXELS, what=what)
        best = ref["best_idx"]
        assert_close(step.instance.score, ref["score"][best], **TOL_SCORE, what=f"{what} inst")


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_one_shot_detector(fixture, loaded):
    run = fixture_io(fixture)["tracker"]["osdet"]
    assert run["channel_order"] == "BGR" and run["tracker_class"] == "SiamFCppOneShotDetector"
    detector = loaded(fixture, "siamfcpp_osdet").tracker()
    x, y, w, h = run["reference_rect_xywh"]
    detector.init(_rgb(run["reference_frame"]), (x, y, x + w, y + h))
    assert np.array_equal(detector.z_crop, run["z_crop"].numpy()), "template crop differs"
    assert_close(detector.avg_chans, run["crop_info"]["avg_chans"], atol=1e-9, rtol=0)
    step = detector.step(_rgb(run["scene"]))
    assert np.array_equal(step.x_crop, run["x_crop"].numpy()), "search crop differs"
    assert float(step.scale_x) == run["crop_info"]["scale_x"]
    assert step.pscore.dtype == np.float32  # no window blended in
    assert_close(step.score, run["score"], **TOL_SCORE, what="score")
    assert_close(step.all_box, run["all_box"], **TOL_PIXELS, what="all_box")
    assert_close(step.penalty, run["penalty"], **TOL_SCORE, what="penalty")
    assert_close(step.pscore, run["pscore"], **TOL_SCORE, what="pscore")
    assert step.best_idx == run["best_idx"]
    assert_close(step.bbox_pred_in_crop, run["bbox_pred_in_crop"], **TOL_PIXELS, what="bbox")
    assert_close(step.rect_xywh, run["rect_xywh"], **TOL_PIXELS, what="rect")
    assert_close(detector.state.target_pos, run["target_pos"], **TOL_PIXELS, what="pos")
    assert_close(detector.state.target_sz, run["target_sz"], **TOL_PIXELS, what="size")
