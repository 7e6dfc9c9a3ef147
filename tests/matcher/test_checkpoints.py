"""Checkpoint loading: published layouts load strictly (wrong files: test_checkpoints_refused.py).

"Published layout" means the key names and shapes of the upstream ``state_dict()``, taken
from each fixture's ``keys.json``, or derived from the documented differences for models
the fixtures do not cover (README section 3).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import matcher
from matcher.checkpoints.io import read_checkpoint, save_checkpoint
from matcher.checkpoints.layouts import get_layout
from matcher.errors import CheckpointError
from tests.fixtures import needs_fixtures
from tests.matcher.published_layouts import (
    NO_BATCHES,
    OWN_FORMAT_ONLY,
    PARAMETER_FREE,
    PUBLISHED,
    published_state_dict,
)


def test_every_recipe_has_a_published_layout_or_no_parameters():
    assert set(matcher.list_recipes()) == set(PUBLISHED) | PARAMETER_FREE | OWN_FORMAT_ONLY


def _under_our_names(m, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (published key names) renamed through the recipe layout's key maps."""
    ours = m.net.state_dict()
    layout = get_layout(m.recipe.checkpoint_layout)
    mapped = {}
    for key, value in state.items():
        best = max(layout.key_maps, key=lambda f: f(key) in ours)
        mapped[best(key)] = value
    return mapped


@needs_fixtures
@pytest.mark.parametrize("recipe", sorted(PUBLISHED))
def test_published_layout_loads_strictly(recipe, tmp_path):
    state = published_state_dict(recipe)
    path = tmp_path / "model.pth"
    torch.save(state, path)
    m = matcher.load(recipe, path)
    ours = m.net.state_dict()
    mapped = _under_our_names(m, state)
    assert set(mapped) <= set(ours)
    missing = [k for k in ours if k not in mapped]
    assert all(k.endswith(NO_BATCHES) for k in missing), missing
    for key, value in mapped.items():
        assert torch.equal(ours[key], value.to(ours[key].dtype)), key


@needs_fixtures
def test_pysot_file_without_num_batches_tracked_and_wrapped(tmp_path):
    state = published_state_dict("siamrpnpp_r50")
    stripped = {k: v for k, v in state.items() if not k.endswith(NO_BATCHES)}
    wrapped = {"epoch": 20, "state_dict": {f"module.{k}": v for k, v in stripped.items()}}
    path = tmp_path / "checkpoint_e20.pth"
    torch.save(wrapped, path)
    m = matcher.load("siamrpnpp_r50", path)
    key = "head.rpn2.cls.conv_kernel.0.weight"
    assert torch.equal(m.net.state_dict()[key], state["rpn_head.rpn2.cls.conv_kernel.0.weight"])


@needs_fixtures
def test_foolwood_training_checkpoint_loads(tmp_path):
    """SiamMask's own snapshots: {epoch, arch, state_dict (module.), best_acc, optimizer,
    anchor_cfg}."""
    state = published_state_dict("siammask_r50_sharp")
    wrapped = {
        "epoch": 20,
        "arch": "Custom",
        "state_dict": {f"module.{k}": v for k, v in state.items()},
        "best_acc": 0.0,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.0025, "params": [0, 1]}]},
        "anchor_cfg": {"stride": 8, "ratios": [0.33, 0.5, 1, 2, 3], "scales": [8]},
    }
    path = tmp_path / "SiamMask_VOT.pth"
    torch.save(wrapped, path)
    m = matcher.load("siammask_r50_sharp", path)
    key = "refine_head.deconv.weight"
    assert torch.equal(m.net.state_dict()[key], state["refine_model.deconv.weight"])
    with pytest.raises(CheckpointError, match="foolwood/SiamMask model"):
        matcher.load("siamrpnpp_r50", path)


@needs_fixtures
def test_video_analyst_style_wrapper(tmp_path):
    state = published_state_dict("siamrpnpp_alexnet")
    path = tmp_path / "snapshot.pkl"
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict": {}}, path)
    m = matcher.load("siamrpnpp_alexnet", path)
    ours = m.net.state_dict()
    mapped = _under_our_names(m, state)
    float_keys = [k for k, v in mapped.items() if v.is_floating_point()]
    assert len(float_keys) >= 10 and set(mapped) <= set(ours)
    for key in float_keys:  # every tensor came from the file, none from the initialiser
        assert torch.equal(ours[key], mapped[key]), key


@needs_fixtures
@pytest.mark.parametrize("recipe", ["siamfcpp_alexnet", "siamfcpp_googlenet"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "model_state_dict"])
def test_siamfcpp_pkl_raw_or_wrapped(recipe, wrapped, tmp_path):
    """video_analyst loads a raw ``SiamTrack`` state dict or a trainer snapshot
    ``{epoch, model_state_dict, optimizer_state_dict}``; which of the two the released
    ``.pkl`` files are is not verified (README section 3), so both must load."""
    state = published_state_dict(recipe)
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-6, "momentum": 0.9, "params": [0]}]}
    payload = (
        {"epoch": 19, "model_state_dict": state, "optimizer_state_dict": optimizer}
        if wrapped
        else state
    )
    path = tmp_path / f"{recipe}-md5_0123.pkl"
    torch.save(payload, path)
    ours = matcher.load(recipe, path).net.state_dict()
    first_backbone_key = next(k for k in state if k.startswith("basemodel."))
    assert torch.equal(
        ours["backbone." + first_backbone_key[len("basemodel.") :]], state[first_backbone_key]
    )
    assert torch.equal(ours["head.r_x.bn.running_var"], state["r_x.bn.running_var"])
    assert torch.equal(ours["head.si"], state["head.si"]) and ours["head.si"].dim() == 0


@needs_fixtures
def test_siamfcpp_weights_of_the_other_backbone_are_refused(tmp_path):
    path = tmp_path / "siamfcpp-googlenet-vot.pkl"
    torch.save(published_state_dict("siamfcpp_googlenet"), path)
    with pytest.raises(CheckpointError, match="SiamFC\\+\\+ GoogLeNet") as err:
        matcher.load("siamfcpp_alexnet", path)
    assert "video_analyst" in str(err.value) and "missing" in str(err.value)
    path = tmp_path / "model.pth"
    torch.save(published_state_dict("siamrpnpp_alexnet"), path)
    with pytest.raises(CheckpointError, match="PySOT SiamRPN AlexNet"):
        matcher.load("siamfcpp_alexnet", path)


@needs_fixtures
def test_siamfc_pre_2019_feature_names(tmp_path):
    state = published_state_dict("siamfc_alexnet")
    index = {
        "conv1.0": 0,
        "conv1.1": 1,
        "conv2.0": 4,
        "conv2.1": 5,
        "conv3.0": 8,
        "conv3.1": 9,
        "conv4.0": 11,
        "conv4.1": 12,
        "conv5.0": 14,
    }
    old = {}
    for key, value in state.items():
        _, stage, sub, rest = key.split(".", 3)
        old[f"feature.{index[f'{stage}.{sub}']}.{rest}"] = value
    path = tmp_path / "siamfc_old.pth"
    torch.save(old, path)
    m = matcher.load("siamfc_alexnet", path)
    assert torch.equal(m.net.state_dict()["backbone.conv5.0.weight"], old["feature.14.weight"])


def _save_like_pytorch_031(obj: dict, path: Path) -> None:
    """Write the legacy (non-zip) format with 0.3-style tensor pickling
    (``torch._utils._rebuild_tensor(storage, offset, size, stride)``), as DaSiamRPN's
    ``.model`` files were written by PyTorch 0.3.1."""

    def old_reduce(tensor, proto):
        return (
            torch._utils._rebuild_tensor,
            (
                tensor._typed_storage(),
                tensor.storage_offset(),
                tuple(tensor.size()),
                tensor.stride(),
            ),
        )

    original = torch.Tensor._reduce_ex_internal
    torch.Tensor._reduce_ex_internal = old_reduce
    try:
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    finally:
        torch.Tensor._reduce_ex_internal = original


@needs_fixtures
def test_dasiamrpn_legacy_model_file(tmp_path):
    from collections import OrderedDict

    state = OrderedDict(published_state_dict("siamrpn_alexnet_upchannel"))
    assert not any(k.endswith(NO_BATCHES) for k in state)  # as distributed
    path = tmp_path / "SiamRPNVOT.model"
    _save_like_pytorch_031(state, path)
    data = path.read_bytes()
    assert not data.startswith(b"PK")  # the legacy, non-zip container
    assert b"_rebuild_tensor\n" in data and b"_rebuild_tensor_v2" not in data  # 0.3 pickling
    m = matcher.load("siamrpn_alexnet_upchannel", path)
    assert torch.equal(m.net.state_dict()["head.template_loc_conv.weight"], state["conv_r1.weight"])
    assert torch.equal(
        m.net.state_dict()["backbone.features.0.weight"], state["featureExtract.0.weight"]
    )


@pytest.mark.parametrize("recipe", sorted(matcher.list_recipes()))
def test_own_format_round_trip(recipe, tmp_path):
    torch.manual_seed(1)
    m = matcher.build(recipe)
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = save_checkpoint(tmp_path / "own.pth", m.net, m.recipe.to_dict(), extra={"step": 7})
    ckpt = read_checkpoint(path)
    assert ckpt.source_format == "siammatch" and ckpt.recipe["name"] == recipe
    loaded = matcher.load(None, path)  # the recipe comes from the file
    assert loaded.name == recipe
    for key, value in m.net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
