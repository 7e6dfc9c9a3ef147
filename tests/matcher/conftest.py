"""Fixtures of the matcher tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", params=[False, True], ids=["as_loaded", "prepared"])
def prepared(request) -> bool:
    """Both inference paths that ship: the network as loaded (``matcher.load``), and
    prepared for inference (``prepare=True``, the default of ``matcher.load_trained``):
    batch norms folded, a Siamese tracker's convolutions packed for oneDNN."""
    return request.param
