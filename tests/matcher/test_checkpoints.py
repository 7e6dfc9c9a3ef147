"""Checkpoint loading: published layouts load strictly, wrong files are refused clearly.

"Published layout" means the key names and shapes of the upstream ``state_dict()``, taken
from each fixture's ``keys.json``, or derived from the documented differences for models
the fixtures do not cover (README section 3).
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
from pathlib import Path

import pytest
import torch

import matcher
from matcher.checkpoints import read_checkpoint, save_checkpoint
from matcher.errors import CheckpointError
from tests.fixtures import fixture_keys, needs_fixtures

# recipe -> (fixture whose keys.json holds the layout, keys to drop, shape rewrite)
NO_BATCHES = "num_batches_tracked"


def _dasiamrpn_big(keys: dict) -> dict:
    """SiamRPNBIG: the same names with doubled widths (README section 3)."""
    widths = {
        "featureExtract.0.weight": [192, 3, 11, 11],
        "featureExtract.4.weight": [512, 192, 5, 5],
        "featureExtract.8.weight": [768, 512, 3, 3],
        "featureExtract.11.weight": [768, 768, 3, 3],
        "featureExtract.14.weight": [512, 768, 3, 3],
        "conv_r1.weight": [10240, 512, 3, 3],
        "conv_r1.bias": [10240],
        "conv_cls1.weight": [5120, 512, 3, 3],
        "conv_cls1.bias": [5120],
        "conv_r2.weight": [512, 512, 3, 3],
        "conv_r2.bias": [512],
        "conv_cls2.weight": [512, 512, 3, 3],
        "conv_cls2.bias": [512],
    }
    bn_width = {"1": 192, "5": 512, "9": 768, "12": 768, "15": 512}
    out = {}
    for key, spec in keys.items():
        shape = widths.get(key, spec["shape"])
        parts = key.split(".")
        if parts[0] == "featureExtract" and parts[1] in bn_width and spec["shape"]:
            shape = [bn_width[parts[1]]]
        if (
            parts[0] == "featureExtract"
            and parts[1] in {"0", "4", "8", "11", "14"}
            and parts[2] == "bias"
        ):
            shape = [widths[f"featureExtract.{parts[1]}.weight"][0]]
        out[key] = {**spec, "shape": shape}
    return out


def _foolwood_siammask(keys: dict, *, refine: bool = True) -> dict:
    """foolwood/SiamMask names: PySOT's file was converted from them by renaming keys."""
    renames = [
        ("backbone.", "features.features."),
        ("neck.downsample.", "features.downsample."),
        ("rpn_head.", "rpn_model."),
        ("mask_head.", "mask_model.mask."),
        ("refine_head.", "refine_model."),
    ]
    out = {}
    for key, spec in keys.items():
        if key.startswith("refine_head.") and not refine:
            continue
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = spec
    return out


PUBLISHED = {
    "siamfc_alexnet": ("siamfc_alexnet", (), None),
    "siamfcpp_alexnet": ("siamfcpp_alexnet", (), None),
    "siamfcpp_alexnet_otb": ("siamfcpp_alexnet", (), None),
    "siamfcpp_googlenet": ("siamfcpp_googlenet", (), None),
    "siammask_r50": ("siammask_r50_l3", (NO_BATCHES,), None),
    "siammask_r50_sharp": ("siammask_r50_l3", (), _foolwood_siammask),
    "siammask_r50_sharp_davis": ("siammask_r50_l3", (), _foolwood_siammask),
    "siammask_r50_base": (
        "siammask_r50_l3",
        (),
        lambda keys: _foolwood_siammask(keys, refine=False),
    ),
    "siamrpn_alexnet_upchannel": ("dasiamrpn_vot", (NO_BATCHES,), None),
    "siamrpn_alexnet_upchannel_otb": ("dasiamrpn_vot", (NO_BATCHES,), None),
    "siamrpn_alexnet_upchannel_big": ("dasiamrpn_vot", (NO_BATCHES,), _dasiamrpn_big),
    "siamrpnpp_alexnet": ("siamrpn_alex_dwxcorr", (), None),
    "siamrpnpp_alexnet_otb": ("siamrpn_alex_dwxcorr", (), None),
    "siamrpnpp_mobilenetv2": ("siamrpn_mobilev2_l234_dwxcorr", (), None),
    "siamrpnpp_r50": ("siamrpn_r50_l234_dwxcorr", (), None),
    "siamrpnpp_r50_otb": (
        "siamrpn_r50_l234_dwxcorr",
        ("rpn_head.cls_weight", "rpn_head.loc_weight"),
        None,
    ),
}
#: Recipes whose network has no parameters, hence no published weights.
PARAMETER_FREE = {"siamfc_pixels"}
#: Recipes without published PyTorch weights: own checkpoints only (Siamese Mask R-CNN's
#: original weights are Keras files; siammask_small is trained by this project).
OWN_FORMAT_ONLY = {"siam_mask_rcnn_r50", "siammask_small", "siammask_small_embedder"}


def published_state_dict(recipe: str, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under a recipe's published key names and shapes."""
    fixture, drop, rewrite = PUBLISHED[recipe]
    keys = fixture_keys(fixture)
    if rewrite is not None:
        keys = rewrite(keys)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, spec in keys.items():
        if any(key.endswith(d) or key == d for d in drop):
            continue
        if spec["dtype"] == "int64":
            out[key] = torch.tensor(0, dtype=torch.int64)
        else:
            out[key] = torch.randn(spec["shape"], generator=gen) * 0.01 + 1.0
    return out


def test_every_recipe_has_a_published_layout_or_no_parameters():
    assert set(matcher.list_recipes()) == set(PUBLISHED) | PARAMETER_FREE | OWN_FORMAT_ONLY


def _under_our_names(m, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (published key names) renamed through the recipe layout's key maps."""
    ours = m.net.state_dict()
    layout = matcher.checkpoints.get_layout(m.recipe.checkpoint_layout)
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


# -- wrong files -----------------------------------------------------------------------


@needs_fixtures
def test_another_models_weights_are_refused_with_what_was_found(tmp_path):
    path = tmp_path / "alex.pth"
    torch.save(published_state_dict("siamrpnpp_alexnet"), path)
    with pytest.raises(CheckpointError) as err:
        matcher.load("siamrpnpp_r50", path)
    msg = str(err.value)
    assert "siamrpnpp_r50" in msg and "PySOT" in msg
    assert "PySOT SiamRPN AlexNet" in msg and "missing" in msg


@needs_fixtures
def test_dasiamrpn_weights_into_pysot_recipe_are_refused(tmp_path):
    path = tmp_path / "SiamRPNVOT.model"
    torch.save(published_state_dict("siamrpn_alexnet_upchannel"), path)
    with pytest.raises(CheckpointError, match="DaSiamRPN"):
        matcher.load("siamrpnpp_alexnet", path)


@needs_fixtures
def test_wrong_shapes_are_refused(tmp_path):
    path = tmp_path / "SiamRPNBIG.model"
    torch.save(published_state_dict("siamrpn_alexnet_upchannel_big"), path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        matcher.load("siamrpn_alexnet_upchannel", path)


class _Exploit:
    """Unpickling this would create a file: weights-only loading must refuse it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    torch.save({"backbone.conv1.0.weight": torch.zeros(1), "x": _Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused"):
        matcher.load("siamfc_alexnet", path)
    assert not marker.exists()


def test_truncated_file_is_refused(tmp_path):
    m = matcher.build("siamfc_alexnet")
    good = tmp_path / "good.pth"
    torch.save(m.net.state_dict(), good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        matcher.load("siamfc_alexnet", bad)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"backbone.conv1.0.weight: [0.1, 0.2]\n", "not a PyTorch checkpoint"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a PyTorch checkpoint"),
    ],
)
def test_non_checkpoint_files_are_refused(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        matcher.load("siamfc_alexnet", path)


@pytest.mark.parametrize(
    "payload, message",
    [
        ([torch.zeros(3)], "holds a list"),
        (torch.zeros(3), "holds a Tensor"),
        ({"a": 1, "b": "text"}, "not a plain state dict"),
        ({}, "empty state dict"),
        ({"format": "siammatch", "version": 99, "state_dict": {}}, "format version"),
    ],
)
def test_wrong_contents_are_refused(tmp_path, payload, message):
    path = tmp_path / "weights.pth"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        matcher.load("siamfc_alexnet", path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        matcher.load("siamfc_alexnet", tmp_path / "nope.pth")


def test_external_file_without_recipe_needs_a_recipe(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(matcher.build("siamfc_alexnet").net.state_dict(), path)
    with pytest.raises(CheckpointError, match="name the recipe"):
        matcher.load(None, path)


def test_own_checkpoint_of_another_recipe_is_refused(tmp_path):
    m = matcher.build("siamfc_alexnet")
    path = save_checkpoint(tmp_path / "fc.pth", m.net, m.recipe.to_dict())
    with pytest.raises(CheckpointError, match="siamrpnpp_alexnet"):
        matcher.load("siamrpnpp_alexnet", path)


def test_loading_never_unpickles_arbitrary_globals(tmp_path):
    """A pickle that only references a harmless non-tensor global is still refused."""
    path = tmp_path / "global.pth"
    buf = io.BytesIO()
    pickle.dump({"w": copyreg._reconstructor}, buf, protocol=2)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError):
        matcher.load("siamfc_alexnet", path)
    assert os.path.getsize(path) > 0
