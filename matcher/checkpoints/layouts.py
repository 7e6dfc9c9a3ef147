"""The registered checkpoint layouts: key maps from published projects' names to ours.

A recipe's *layout* says how the upstream project named its modules; loading translates a
file's keys through the layout's key maps (:func:`matcher.checkpoints.io.fit_state_dict`).

Layouts: ``pysot`` (PySOT model zoo ``model.pth``), ``dasiamrpn`` (``SiamRPN*.model``,
legacy PyTorch 0.3 serialisation), ``siammask`` (foolwood/SiamMask ``SiamMask_*.pth``,
usually wrapped in a training checkpoint's ``state_dict``), ``siamfc_pytorch``
(``siamfc_alexnet_e50.pth``, current and pre-2019 ``feature.N`` names), ``video_analyst``
(SiamFC++ ``*.pkl``, raw or under ``model_state_dict``) and ``siammatch`` (this project's
files: a dict with ``format``, ``version``, the resolved ``recipe`` and the
``state_dict``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from matcher.registry import Registry

KeyMap = Callable[[str], str]


@dataclass(frozen=True)
class CheckpointLayout:
    """How one project names its modules.

    Attributes:
        name: layout id used in recipes.
        project: human name of the upstream project.
        key_maps: candidate maps from upstream key to our key; the one that matches the
            most model keys wins (several exist where a project renamed its modules).
    """

    name: str
    project: str
    key_maps: tuple[KeyMap, ...]


LAYOUTS: Registry = Registry("checkpoint layout")


def _identity(key: str) -> str:
    return key


def _prefix_map(pairs: list[tuple[str, str]]) -> KeyMap:
    def mapper(key: str) -> str:
        for old, new in pairs:
            if key.startswith(old):
                return new + key[len(old) :]
        return key

    return mapper


# PySOT: ModelBuilder names ``rpn_head``; ours is ``head``.
_pysot_map = _prefix_map([("rpn_head.", "head.")])

# DaSiamRPN: ``featureExtract`` + ``conv_{r,cls}{1,2}`` + ``regress_adjust``.
_dasiamrpn_map = _prefix_map(
    [
        ("featureExtract.", "backbone.features."),
        ("conv_r1.", "head.template_loc_conv."),
        ("conv_cls1.", "head.template_cls_conv."),
        ("conv_r2.", "head.search_loc_conv."),
        ("conv_cls2.", "head.search_cls_conv."),
        ("regress_adjust.", "head.loc_adjust."),
    ]
)

# foolwood/SiamMask: ``features.features`` backbone, ``features.downsample`` neck,
# ``rpn_model``/``mask_model.mask``/``refine_model`` heads.
_siammask_map = _prefix_map(
    [
        ("features.features.", "backbone."),
        ("features.downsample.", "neck.downsample."),
        ("rpn_model.", "head."),
        ("mask_model.mask.", "mask_head."),
        ("refine_model.", "refine_head."),
    ]
)

# video_analyst (SiamFC++): ``basemodel`` backbone; the adjust convs sit at the top level
# of ``SiamTrack`` and belong to our head, whose other names equal ``DenseboxHead``'s.
_video_analyst_map = _prefix_map(
    [
        ("basemodel.", "backbone."),
        ("c_z_k.", "head.c_z_k."),
        ("r_z_k.", "head.r_z_k."),
        ("c_x.", "head.c_x."),
        ("r_x.", "head.r_x."),
    ]
)

# siamfc-pytorch before November 2019: one ``feature`` Sequential.
_SIAMFC_OLD_INDEX = {
    0: "conv1.0",
    1: "conv1.1",
    4: "conv2.0",
    5: "conv2.1",
    8: "conv3.0",
    9: "conv3.1",
    11: "conv4.0",
    12: "conv4.1",
    14: "conv5.0",
}


def _siamfc_old_map(key: str) -> str:
    match = re.match(r"^feature\.(\d+)\.(.+)$", key)
    if match and int(match.group(1)) in _SIAMFC_OLD_INDEX:
        return f"backbone.{_SIAMFC_OLD_INDEX[int(match.group(1))]}.{match.group(2)}"
    return key


def register_layout(layout: CheckpointLayout) -> None:
    """Add a layout to :data:`LAYOUTS` (raises on a duplicate name)."""
    LAYOUTS.register(layout.name)(lambda: layout)


register_layout(CheckpointLayout("siammatch", "siammatch", (_identity,)))
register_layout(CheckpointLayout("pysot", "PySOT model zoo", (_pysot_map,)))
register_layout(CheckpointLayout("dasiamrpn", "DaSiamRPN", (_dasiamrpn_map,)))
register_layout(CheckpointLayout("siammask", "foolwood/SiamMask", (_siammask_map,)))
register_layout(CheckpointLayout("siamfc_pytorch", "siamfc-pytorch", (_identity, _siamfc_old_map)))
register_layout(
    CheckpointLayout("video_analyst", "video_analyst (SiamFC++)", (_video_analyst_map,))
)


def get_layout(name: str) -> CheckpointLayout:
    """The registered layout ``name``.

    Raises:
        UnknownComponentError: not registered.
    """
    return LAYOUTS.get(name)()
