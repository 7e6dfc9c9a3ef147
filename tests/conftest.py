"""Suite-wide settings: deterministic single-threaded torch for reproducible numbers."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True, scope="session")
def _torch_settings():
    torch.manual_seed(0)
    yield
