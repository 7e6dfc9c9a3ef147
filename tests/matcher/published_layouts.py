"""Published checkpoint layouts for the tests: random tensors under each recipe's upstream
key names and shapes, taken from the fixtures' ``keys.json`` or derived from the documented
differences for models the fixtures do not cover (README section 3 of the fixtures)."""

from __future__ import annotations

import torch

from tests.fixtures import fixture_keys

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
