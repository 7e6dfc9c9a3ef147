"""Reading a built real-photo one-shot set back: its document checked, a split's trials
resolved to files.

:func:`load_real_document` reads ``root/annotations.json`` and checks that it is a set of
this name and version (the layout is described in :mod:`trainers.evaluate.real_set`, which
builds it); :func:`load_real_trials` returns one split's trials with the paths and sizes of
their scene and reference images, after checking every field and file they need. Every
fault raises :class:`~matcher.errors.InvalidArgumentError` naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from matcher.errors import InvalidArgumentError
from trainers.evaluate.real_set import ANNOTATIONS, NAME, VERSION

_TOP_KEYS = ("info", "images", "references", "trials")
_TRIAL_KEYS = ("id", "image_id", "reference_id", "present", "category", "split", "boxes")


def _bad(path: Path, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{path}: not a valid {NAME} set: {why}")


def load_real_document(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``root/annotations.json``.

    Raises:
        InvalidArgumentError: the file is missing, unreadable, not JSON, or not a set of
            this name and version (the message names the path and the fault).
    """
    path = Path(root) / ANNOTATIONS
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgumentError(f"{path}: cannot read the real-photo set: {exc}") from None
    except ValueError as exc:
        raise _bad(path, f"not JSON ({exc})") from None
    if not isinstance(document, dict) or any(k not in document for k in _TOP_KEYS):
        raise _bad(path, f"the top level must hold {list(_TOP_KEYS)}")
    info = document["info"]
    if not isinstance(info, dict) or info.get("name") != NAME:
        raise _bad(path, f"info.name is not {NAME!r}")
    if info.get("version") != VERSION:
        raise _bad(path, f"version {info.get('version')!r}, this code reads {VERSION}")
    return document


def load_real_trials(root: str | os.PathLike[str], split: str) -> list[dict[str, Any]]:
    """The trials of one split, each a copy of its ``trials`` entry plus ``image_path``,
    ``image_height``, ``image_width``, ``reference_path``, ``reference_box`` and
    ``reference_source``.

    Raises:
        InvalidArgumentError: a bad or missing file (see :func:`load_real_document`), a
            split the set does not hold, a trial whose image or reference is missing or
            whose fields are malformed.
    """
    root = Path(root)
    path = root / ANNOTATIONS
    document = load_real_document(root)
    if split not in document["info"].get("counts", {}):
        raise InvalidArgumentError(
            f"{path}: no split {split!r}; it holds {list(document['info'].get('counts', {}))}"
        )
    images = {im["id"]: im for im in document["images"]}
    references = {ref["id"]: ref for ref in document["references"]}
    out = []
    for trial in document["trials"]:
        if not isinstance(trial, dict) or any(k not in trial for k in _TRIAL_KEYS):
            raise _bad(path, f"a trial lacks one of {list(_TRIAL_KEYS)}: {trial!r:.200}")
        if trial["split"] != split:
            continue
        image = images.get(trial["image_id"])
        reference = references.get(trial["reference_id"])
        if image is None or reference is None:
            raise _bad(path, f"trial {trial['id']} names a missing image or reference")
        boxes, masks = trial["boxes"], trial.get("masks")
        if not isinstance(boxes, list) or any(
            not isinstance(b, list) or len(b) != 4 or not b[0] < b[2] or not b[1] < b[3]
            for b in boxes
        ):
            raise _bad(path, f"trial {trial['id']} has malformed boxes")
        if bool(trial["present"]) != bool(boxes):
            raise _bad(path, f"trial {trial['id']}: present={trial['present']} with {boxes}")
        if masks is not None and len(masks) != len(boxes):
            raise _bad(path, f"trial {trial['id']}: {len(masks)} masks for {len(boxes)} boxes")
        image_path = root / image["file_name"]
        reference_path = root / reference["file_name"]
        for file in (image_path, reference_path):
            if not file.is_file():
                raise _bad(path, f"trial {trial['id']} needs {file}, which is missing")
        out.append(
            {
                **trial,
                "image_path": str(image_path),
                "image_height": image["height"],
                "image_width": image["width"],
                "reference_path": str(reference_path),
                "reference_box": reference["box"],
                "reference_source": reference["source"],
            }
        )
    return out
