"""Access to the parity fixtures in ``../shared/fixtures`` (see its README).

The fixtures hold seeded weights in the upstream projects' exact key layouts, their
inputs, and the outputs the upstream code produced from them. Tests that need them are
marked with :data:`needs_fixtures`, which skips them only when the folder is absent (a
user's clone); CI always has it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"parity fixtures not found at {FIXTURES}"
)

# Fixture tolerances (README section 5): |ours - ref| <= atol + rtol * |ref|.
TOL_NETWORK = {"atol": 1e-3, "rtol": 1e-4}
TOL_SCORE = {"atol": 1e-4, "rtol": 0.0}
TOL_PIXELS = {"atol": 1e-2, "rtol": 0.0}


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def dequantised_weights(name: str) -> dict[str, torch.Tensor]:
    """The fixture's state dict under upstream key names, exactly dequantised."""
    raw = torch.load(fixture_path(name) / "weights.pt", weights_only=True)
    out = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[key] = value["q"].to(torch.float32) * (2.0 ** value["exp"])
        else:
            out[key] = value.clone()
    return out


def fixture_io(name: str) -> dict:
    return torch.load(fixture_path(name) / "io.pt", weights_only=True)


def fixture_keys(name: str) -> dict[str, dict]:
    return json.loads((fixture_path(name) / "keys.json").read_text())


def assert_close(ours, ref, *, atol: float, rtol: float, what: str = "") -> None:
    ours_t = torch.as_tensor(ours, dtype=torch.float64)
    ref_t = torch.as_tensor(ref, dtype=torch.float64)
    assert ours_t.shape == ref_t.shape, (
        f"{what}: shape {tuple(ours_t.shape)} != {tuple(ref_t.shape)}"
    )
    diff = (ours_t - ref_t).abs()
    bound = atol + rtol * ref_t.abs()
    worst = float((diff - bound).max()) if diff.numel() else 0.0
    assert bool((diff <= bound).all()), (
        f"{what}: max |diff| {float(diff.max()):.3g} exceeds tolerance (atol {atol}, rtol {rtol}); "
        f"worst excess {worst:.3g}"
    )
