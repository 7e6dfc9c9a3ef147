"""Loading published tracker checkpoints as distributed, and saving our own.

Every file is read with ``torch.load(..., weights_only=True)``: a pickle that would run
code is refused. The state dict found inside (raw, or wrapped under ``state_dict`` /
``model_state_dict`` / ``model``, with an optional ``module.`` prefix) is translated by the
recipe's *layout* — a key map from the upstream project's module names to ours — and
loaded strictly. The only keys a file may lack are those the published files are known to
lack (BatchNorm ``num_batches_tracked``). Anything else that does not fit raises
:class:`~matcher.errors.CheckpointError` saying what was expected and what was found.

Layouts: ``pysot`` (PySOT model zoo ``model.pth``), ``dasiamrpn`` (``SiamRPN*.model``,
legacy PyTorch 0.3 serialisation), ``siammask`` (foolwood/SiamMask ``SiamMask_*.pth``,
usually wrapped in a training checkpoint's ``state_dict``), ``siamfc_pytorch``
(``siamfc_alexnet_e50.pth``, current and pre-2019 ``feature.N`` names), ``video_analyst``
(SiamFC++ ``*.pkl``, raw or under ``model_state_dict``) and ``siammatch`` (this project's
files: a dict with ``format``, ``version``, the resolved ``recipe`` and the
``state_dict``).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from matcher.errors import CheckpointError
from matcher.files import atomic_write
from matcher.registry import Registry

logger = logging.getLogger(__name__)

FORMAT_NAME = "siammatch"
FORMAT_VERSION = 1

#: The project's folder of trained weights (``<name>.pth`` with a ``<name>.json`` card).
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def shipped_weights(name: str) -> Path | None:
    """The trained weights that ship with the project under ``name`` (a recipe, or
    ``embedder_default``), if any.

    They live in the project's ``weights/`` folder as ``<name>.pth`` with a JSON card
    (``<name>.json``) saying how they were trained and measured.
    """
    path = SHIPPED_WEIGHTS_DIR / f"{name}.pth"
    return path if path.is_file() else None


def is_shipped_name(text: str) -> bool:
    """Whether a recipe setting that names a file (``verifier``, ``calibration``) names one
    shipped under ``weights/``: a bare name, without a path separator or a suffix."""
    return os.sep not in text and "/" not in text and not Path(text).suffix


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

#: Keys a published file may lack; PyTorch BatchNorm restores them as zero.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


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


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What a weights file held.

    Attributes:
        state_dict: tensors under their original (upstream) names, wrapper removed.
        recipe: the resolved recipe stored in a siammatch file, else ``None``.
        source_format: ``"siammatch"`` or ``"external"``.
        extra: other top-level entries of a siammatch file (e.g. ``training`` state).
    """

    state_dict: dict[str, torch.Tensor]
    recipe: dict[str, Any] | None
    source_format: str
    extra: dict[str, Any] = field(default_factory=dict)


def read_checkpoint(path: str | os.PathLike) -> LoadedCheckpoint:
    """Read a weights file safely and unwrap its state dict.

    Raises:
        CheckpointError: missing, empty, not a PyTorch file, truncated, containing code or
            non-tensor objects, or holding no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {str(path)!r} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"weights file {str(path)!r} is empty")
    with open(path, "rb") as fh:
        head = fh.read(8)
    is_zip = head.startswith(b"PK\x03\x04")
    is_pickle = head[:1] == b"\x80"
    if not (is_zip or is_pickle):
        raise CheckpointError(
            f"{path.name} is not a PyTorch checkpoint (expected a zip archive or a pickle, "
            f"the file starts with {head!r})"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in str(exc) or "Unsupported" in str(exc):
            raise CheckpointError(
                f"{path.name} contains Python objects or code besides tensors and was refused "
                f"(weights_only loading): {_first_reason(exc)}"
            ) from None
        raise CheckpointError(f"{path.name} is not a readable checkpoint: {reason}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path.name} is truncated or corrupt ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})"
        ) from None
    return _unwrap(obj, path.name)


def _first_reason(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        if "Unsupported" in line or "not an allowed" in line or "global" in line.lower():
            return line[:300]
    return lines[0][:300] if lines else type(exc).__name__


def _unwrap(obj: Any, name: str) -> LoadedCheckpoint:
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{name} holds a {type(obj).__name__}, expected a state dict (a mapping of names "
            "to tensors)"
        )
    recipe = None
    source = "external"
    extra: dict[str, Any] = {}
    if obj.get("format") == FORMAT_NAME:
        version = obj.get("version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{name} is a siammatch checkpoint of format version {version!r}; this "
                f"version reads {FORMAT_VERSION}"
            )
        recipe = obj.get("recipe")
        extra = {
            k: v for k, v in obj.items() if k not in ("format", "version", "recipe", "state_dict")
        }
        obj = obj.get("state_dict")
        source = FORMAT_NAME
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{name} is a siammatch checkpoint without a state_dict")
    else:
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and _all_tensors(inner):
                obj = inner
                break
    if not obj and source != FORMAT_NAME:  # parameter-free models save an empty dict
        raise CheckpointError(f"{name} holds an empty state dict")
    bad = [k for k, v in obj.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(
            f"{name} is not a plain state dict: entries such as {bad[:3]} are not tensors "
            f"({len(bad)} of {len(obj)})"
        )
    state = {str(k): v for k, v in obj.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return LoadedCheckpoint(state_dict=state, recipe=recipe, source_format=source, extra=extra)


def _all_tensors(mapping: Mapping) -> bool:
    return all(torch.is_tensor(v) for v in mapping.values())


# --------------------------------------------------------------------------------------
# Fitting a state dict to a model
# --------------------------------------------------------------------------------------


def guess_origin(keys: list[str]) -> str:
    """A human guess of which published model a set of state-dict keys belongs to."""
    keyset = set(keys)

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keyset)

    if has("featureExtract."):
        return "a DaSiamRPN model (SiamRPN up-channel, featureExtract/conv_r1 names)"
    if has("basemodel."):
        if has("basemodel.Mixed_6e."):
            return "a SiamFC++ GoogLeNet model (video_analyst basemodel/head names)"
        if has("basemodel.conv5."):
            return "a SiamFC++ AlexNet model (video_analyst basemodel/head names)"
        return "a SiamFC++ model (video_analyst basemodel/head names)"
    if has("feature.") and not has("backbone."):
        return "a pre-2019 siamfc-pytorch SiamFC model (feature.N names)"
    if has("refine_head.") or has("mask_head."):
        return "a PySOT SiamMask model"
    if has("features.features.") and has("mask_model."):
        with_refine = "sharp" if has("refine_model.") else "base"
        return f"a foolwood/SiamMask model (SiamMask {with_refine})"
    if has("rpn_head.rpn2."):
        if has("backbone.layer0."):
            return "a PySOT SiamRPN++ MobileNetV2 model"
        return "a PySOT SiamRPN++ ResNet-50 (multi-level) model"
    if has("rpn_head.") and has("backbone.features."):
        return "a PySOT SiamRPN AlexNet model"
    if has("rpn_head."):
        return "a PySOT model"
    if has("backbone.conv1.0.") and not has("head."):
        return "a siamfc-pytorch SiamFC model"
    if has("fusion.mix.") and has("roi_heads."):
        return "a siammatch Siamese Mask R-CNN model"
    if has("backbone.body.") and has("roi_heads."):
        return "a torchvision Mask R-CNN / Faster R-CNN model"
    if has("backbone.") and has("head."):
        return "a siammatch model"
    return "an unrecognised model"


def fit_state_dict(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    layout: CheckpointLayout,
    recipe_name: str,
    source: str = "checkpoint",
) -> dict[str, torch.Tensor]:
    """Translate upstream keys with ``layout`` and check them against ``model``.

    Args:
        model: the freshly built model.
        state: the file's state dict under upstream names.
        layout: key layout of the file.
        recipe_name: for messages.
        source: file name, for messages.

    Returns:
        A state dict under our names, with missing optional keys filled, ready for
        ``model.load_state_dict(..., strict=True)``.

    Raises:
        CheckpointError: keys missing, unexpected, or of the wrong shape.
    """
    expected = model.state_dict()
    best: dict[str, torch.Tensor] | None = None
    best_hits = -1
    for key_map in layout.key_maps:
        mapped: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            new = key_map(key)
            if new in mapped:
                raise CheckpointError(f"{source}: keys collide after renaming ({key!r} -> {new!r})")
            mapped[new] = value
        hits = sum(1 for k in mapped if k in expected)
        if hits > best_hits:
            best, best_hits = mapped, hits
    assert best is not None
    missing = [k for k in expected if k not in best and not k.endswith(OPTIONAL_SUFFIXES)]
    unexpected = [k for k in best if k not in expected]
    wrong_shape = [
        (k, tuple(best[k].shape), tuple(expected[k].shape))
        for k in expected
        if k in best and tuple(best[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong_shape:
        raise CheckpointError(
            _mismatch_message(
                source=source,
                recipe_name=recipe_name,
                layout=layout,
                n_expected=len(expected),
                found_keys=list(state),
                missing=missing,
                unexpected=unexpected,
                wrong_shape=wrong_shape,
            )
        )
    out: dict[str, torch.Tensor] = {}
    for key, ref in expected.items():
        if key in best:
            value = best[key]
            if value.is_floating_point() and ref.is_floating_point():
                value = value.to(ref.dtype)
            out[key] = value
        else:
            out[key] = torch.zeros_like(ref)
    return out


def _mismatch_message(
    *,
    source: str,
    recipe_name: str,
    layout: CheckpointLayout,
    n_expected: int,
    found_keys: list[str],
    missing: list[str],
    unexpected: list[str],
    wrong_shape: list[tuple[str, tuple, tuple]],
) -> str:
    parts = [
        f"{source} does not fit recipe {recipe_name!r}: expected {layout.project} weights "
        f"with {n_expected} entries, found {len(found_keys)} entries that look like "
        f"{guess_origin(found_keys)}"
    ]
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong_shape:
        shown = ", ".join(f"{k} {got} vs {want}" for k, got, want in wrong_shape[:3])
        parts.append(f"{len(wrong_shape)} of the wrong shape (file vs model: {shown})")
    return "; ".join(parts)


def load_weights(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    layout_name: str,
    recipe_name: str,
) -> LoadedCheckpoint:
    """Read ``path`` and load it strictly into ``model``.

    A siammatch file is read with the ``siammatch`` layout whatever ``layout_name`` says;
    an external file with ``layout_name``.

    Returns:
        The :class:`LoadedCheckpoint` (for its stored recipe).

    Raises:
        CheckpointError: see :func:`read_checkpoint` and :func:`fit_state_dict`.
    """
    ckpt = read_checkpoint(path)
    layout = get_layout(FORMAT_NAME if ckpt.source_format == FORMAT_NAME else layout_name)
    state = fit_state_dict(
        model, ckpt.state_dict, layout=layout, recipe_name=recipe_name, source=Path(path).name
    )
    model.load_state_dict(state, strict=True)
    logger.info("loaded %d tensors from %s (%s layout)", len(state), path, layout.name)
    return ckpt


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    recipe: dict[str, Any],
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a siammatch checkpoint atomically (temporary file, fsync, rename).

    Args:
        path: destination.
        model: its ``state_dict()`` is saved (tensors moved to CPU).
        recipe: the resolved recipe (``Recipe.to_dict()``).
        extra: further plain data stored beside (training step, metrics ...); must be
            loadable with ``weights_only=True``.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "recipe": recipe,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))
