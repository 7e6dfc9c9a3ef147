"""Reading checkpoints safely, fitting them to a model strictly, and writing our own.

Every file is read with ``torch.load(..., weights_only=True)``: a pickle that would run
code is refused. The state dict found inside (raw, or wrapped under ``state_dict`` /
``model_state_dict`` / ``model``, with an optional ``module.`` prefix) is translated by the
recipe's *layout* — a key map from the upstream project's module names to ours, see
:mod:`matcher.checkpoints.layouts` — and loaded strictly. The only keys a file may lack are
those the published files are known to lack (BatchNorm ``num_batches_tracked``). Anything
else that does not fit raises :class:`~matcher.errors.CheckpointError` saying what was
expected and what was found.

This project's files (``siammatch`` format) are a dict with ``format``, ``version``, the
resolved ``recipe`` and the ``state_dict``.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from matcher.checkpoints.layouts import CheckpointLayout, get_layout
from matcher.checkpoints.origin import guess_origin
from matcher.errors import CheckpointError
from matcher.files import atomic_write

logger = logging.getLogger(__name__)

FORMAT_NAME = "siammatch"
FORMAT_VERSION = 1


#: Keys a published file may lack; PyTorch BatchNorm restores them as zero.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


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
