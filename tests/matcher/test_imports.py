"""The dependency floors: importing ``matcher`` loads none of the packages above it."""

from __future__ import annotations

import subprocess
import sys


def test_matcher_imports_nothing_from_upper_floors():
    code = (
        "import sys, matcher\n"
        "bad = [m for m in ('api', 'index', 'trainers', 'flask', 'faiss') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
