"""The trained weights that ship with the project, in its ``weights/`` folder.

Each is ``<name>.pth`` (a siammatch checkpoint) with a JSON card ``<name>.json`` saying how
it was trained and measured; recipe settings that name a file (``verifier``,
``calibration``) may name one of them by its bare name.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The project's folder of trained weights (``<name>.pth`` with a ``<name>.json`` card).
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


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
