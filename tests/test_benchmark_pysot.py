"""``benchmarks/tracker_vs_pysot.py``: its argument checks, and one short run against PySOT.

The argument checks need no PySOT: a missing path, a folder that is not a PySOT checkout
and an unknown model each give one line on stderr and exit status 2, before any work. The
run against PySOT needs a checkout of github.com/STVIR/pysot, which CI does not have. It is
skipped only when ``SIAMMATCH_PYSOT`` names no checkout. ``SIAMMATCH_PYSOT_DEPS``
optionally names a folder holding PySOT's ``yacs``. Once a checkout is named, any failure
is a test failure, a missing yacs included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tracker_vs_pysot.py"
PYSOT = os.environ.get("SIAMMATCH_PYSOT", "")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env
    )


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tracker_vs_pysot: error: ")
    return lines[0]


def test_missing_pysot_path_exits_2_with_one_line(tmp_path):
    line = _one_error_line(_run(str(tmp_path / "no-such-checkout")))
    assert "no-such-checkout" in line and "does not exist" in line


def test_folder_that_is_not_a_pysot_checkout_exits_2_with_one_line(tmp_path):
    (tmp_path / "pysot").mkdir()
    line = _one_error_line(_run(str(tmp_path)))
    assert "not a PySOT checkout" in line and "pysot/core/config.py" in line


def test_unknown_model_exits_2_with_one_line(tmp_path):
    line = _one_error_line(_run(str(tmp_path), "--models", "alex,vgg"))
    assert "'vgg'" in line and "mobilev2" in line


@pytest.mark.skipif(not PYSOT, reason="SIAMMATCH_PYSOT does not name a PySOT checkout")
def test_short_run_against_pysot_checkout_agrees_box_for_box():
    deps = os.environ.get("SIAMMATCH_PYSOT_DEPS")
    extra = ["--pysot-deps", deps] if deps else []
    proc = _run(PYSOT, "--models", "alex", "--frames", "2", "--warmup", "1", *extra)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| siamrpn_alex")]
    assert len(rows) == 1, proc.stdout
    assert "min IoU 1.0000" in rows[0]
    assert "Note" not in proc.stdout  # our recipe's hyper-parameters equal PySOT's
