"""Fixtures of the matcher tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", params=[False, True], ids=["as_loaded", "prepared"])
def prepared(request) -> bool:
    """Both inference paths that ship: the network as loaded (``matcher.load``), and
    prepared for inference with its batch norms folded (``prepare=True``)."""
    return request.param
