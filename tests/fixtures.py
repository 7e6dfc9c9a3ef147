"""Access to the parity fixtures in ``../shared/fixtures`` (see its README).

The fixtures hold seeded weights in the upstream projects' exact key layouts, their
inputs, and the outputs the upstream code produced from them. Tests that need them are
marked with :data:`needs_fixtures`. When the folder is absent they fail, saying where
they looked; when one fails and the installed torch/OpenCV/NumPy differ from the versions
the fixtures were made with, the failure says so (both in ``tests/conftest.py``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"

needs_fixtures = pytest.mark.needs_fixtures


def missing_fixtures() -> str | None:
    """Why the fixtures cannot be used, or ``None`` when they are there."""
    return None if FIXTURES.is_dir() else f"parity fixtures not found at {FIXTURES}"


@functools.cache
def version_mismatch() -> str | None:
    """The libraries whose installed version differs from the one the fixtures were made
    with (``io.pt`` ``meta.versions``; the build tag such as ``+cu132`` is ignored), as one
    sentence, or ``None`` when they agree."""
    import cv2
    import numpy

    made = fixture_io("siamfc_alexnet")["meta"]["versions"]
    installed = {"torch": torch.__version__, "cv2": cv2.__version__, "numpy": numpy.__version__}
    differ = [
        f"{name} {installed[name]} (fixtures: {made[name]})"
        for name in ("torch", "cv2", "numpy")
        if installed[name].split("+")[0] != str(made[name]).split("+")[0]
    ]
    if not differ:
        return None
    return (
        "installed versions differ from the fixtures': " + ", ".join(differ) + "; crops and "
        "numbers can change between versions (OpenCV 5.0 vs 5.1 moves video_analyst's crops "
        "by a grey level) — install with constraints.txt (make setup)"
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
