"""``siammatch eval pairs`` on the default matcher as it was shipped before issue 15's
third step, for the accuracy half of that step's before/after comparison.

The step changed one recipe setting (``verifier_candidates`` 48 → 32) and two stage
settings that recipes do not reach (the template-matching pyramid's ``max_upscale``
2.5 → 2.0, the geometric stage's homography estimator RANSAC → USAC). This script writes a
recipe ``before.yaml`` (``_base_: siammask_small`` with the old setting) to a temporary
folder, builds the two stages with their old settings for every matcher of the run, and
hands the rest of its command line (without ``--matchers``) to ``siammatch eval pairs``
with ``--matchers before.yaml:weights/siammask_small.pth``. The *after* row is the plain
command (``--matchers siammask_small``). Threads and the prepared embedder change times,
not results, so they are left as they are now.

    python benchmarks/eval_before.py --seed 424243 --scenes 24   # synthetic validation draw
    python benchmarks/eval_before.py --set real --split val      # real-photo validation split
    python benchmarks/eval_before.py --scenes 100                # held-out synthetic

With ``--previous`` first, it runs the default as at the end of that step instead (before
the fourth): today's recipe and stages, every colour correlation by OpenCV's three-channel
``matchTemplate`` (:func:`benchmarks._common.opencv_correlation`), ``--matchers
siammask_small``:

    python benchmarks/eval_before.py --previous --set real --split val
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import matcher.siamese_matcher as siamese_matcher  # noqa: E402
from matcher.inference.geometric import GeometricParams, GeometricVerifier  # noqa: E402
from matcher.inference.ncc import NccParams, NccVerifier  # noqa: E402

#: The previous settings of the two stages (``benchmarks/match_stages.py`` uses the same).
BEFORE_GEOMETRIC = GeometricParams(ransac_method="ransac")
BEFORE_NCC = NccParams(max_upscale=2.5)
BEFORE_RECIPE = "_base_: siammask_small\ninference:\n  match:\n    verifier_candidates: 48\n"


def main() -> int:
    from api.cli import main as cli

    if sys.argv[1:2] == ["--previous"]:
        from benchmarks._common import opencv_correlation

        opencv_correlation(True)
        return cli(["eval", "pairs", "--matchers", "siammask_small", *sys.argv[2:]])

    # the matcher builds its stages by these names (only this process builds matchers)
    siamese_matcher.GeometricVerifier = lambda: GeometricVerifier(BEFORE_GEOMETRIC)
    siamese_matcher.NccVerifier = lambda: NccVerifier(BEFORE_NCC)
    root = _HERE.parent
    with tempfile.TemporaryDirectory() as folder:
        recipe = Path(folder) / "before.yaml"
        recipe.write_text(BEFORE_RECIPE)
        weights = root / "weights" / "siammask_small.pth"
        return cli(["eval", "pairs", "--matchers", f"{recipe}:{weights}", *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
