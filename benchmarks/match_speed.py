"""Match mode before and after issue 15: the exhaustive search on the network as loaded vs
the coarse-to-fine search (``inference.match.coarse_to_fine``) on the prepared network.

Fixed workload: the ``benchmarks/matcher_latency.py`` scene (a 200x200 coffee product,
a 640x480 cluttered scene with the product at 120 px), untrained weights (the same
weights for both settings), one torch thread. The two settings run alternately, so both
see the same machine load; each figure is the median of ``--repeats`` calls after a
warm-up, as wall time and as this process's CPU time (less sensitive to other jobs on a
shared machine). ``match_many(16)`` matches 16 distinct references in one call: the
product and 15 crops of other scikit-image photographs (mostly absent from the scene, as
in a catalog search).

    python benchmarks/match_speed.py [--recipes a,b] [--repeats N] [--threads N]

Prints a Markdown table with the after/before ratios.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402

import matcher  # noqa: E402
from benchmarks._common import alternating_medians, recipe_arguments  # noqa: E402
from benchmarks.matcher_latency import _scene  # noqa: E402
from matcher.inference_prep import prepare_for_inference  # noqa: E402

DEFAULT = (
    "siamrpnpp_alexnet,siamrpnpp_mobilenetv2,siamrpnpp_r50,siamfcpp_alexnet,"
    "siammask_r50,siammask_small"
)
SETTINGS = {
    "before": (["inference.match.coarse_to_fine=false"], False),
    "after": (["inference.match.coarse_to_fine=true"], True),
}


def _others(count: int) -> list[np.ndarray]:
    """``count`` product-sized crops of scikit-image photographs (fixed positions)."""
    photos = [
        getattr(skimage.data, n)()
        for n in ("astronaut", "chelsea", "rocket", "coffee", "immunohistochemistry")
    ]
    crops = []
    for k in range(count):
        photo = photos[k % len(photos)]
        y = 20 + 37 * (k // len(photos))
        x = 30 + 53 * (k // len(photos))
        crops.append(np.ascontiguousarray(photo[y : y + 150 + 10 * k, x : x + 160, :3]))
    return crops


def one_and_many(
    models: dict[str, Any], repeats: int, before_call: Callable[[str], None] = lambda key: None
) -> dict[str, dict[str, tuple[float, float]]]:
    """Median ``(wall s, CPU s)`` of ``match(1)`` and ``match_many(16)`` on the fixed
    workload, per model, the models called alternately; ``before_call(key)`` runs before
    each call of the model ``key`` (e.g. to set its environment)."""
    product, scene = _scene()
    refs = [matcher.Reference.from_image(p) for p in [product, *_others(15)]]
    feats = {k: [m.encode_reference(r) for r in refs] for k, m in models.items()}

    def call(key: str, many: bool):
        before_call(key)
        if many:
            return models[key].match_many(feats[key], scene)
        return models[key].match(feats[key][0], scene)

    keys = list(models)
    one = alternating_medians([lambda k=k: call(k, False) for k in keys], repeats)
    many = alternating_medians([lambda k=k: call(k, True) for k in keys], repeats)
    return {k: {"match": one[i], "many": many[i]} for i, k in enumerate(keys)}


def ms(v: tuple[float, float]) -> str:
    """``(wall s, CPU s)`` as ``"wall / CPU"`` milliseconds."""
    return f"{v[0] * 1000:.0f} / {v[1] * 1000:.0f}"


def bench(name: str, repeats: int) -> dict[str, dict[str, tuple[float, float]]]:
    models = {key: matcher.load(name, overrides=o) for key, (o, _) in SETTINGS.items()}
    # the same (random or shipped) weights, then the "after" network prepared
    models["after"].net.load_state_dict(models["before"].net.state_dict())
    for key, (_, prepare) in SETTINGS.items():
        if prepare:
            prepare_for_inference(models[key].net)
    return one_and_many(models, repeats)


def main() -> None:
    args = recipe_arguments(__doc__, DEFAULT)
    print(
        f"# match before/after — {platform.processor() or platform.machine()}, "
        f"{args.threads} torch thread(s), {args.repeats} repeats; ms as wall / CPU\n"
    )
    print(
        "| recipe | match before | match after | after/before (CPU) "
        "| many(16) before | many(16) after | many(16)/match(1) after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.recipes.split(","):
        r = bench(name, args.repeats)
        b1, a1 = r["before"]["match"], r["after"]["match"]
        bm, am = r["before"]["many"], r["after"]["many"]
        print(
            f"| {name} | {ms(b1)} | {ms(a1)} | {a1[1] / b1[1]:.2f} | {ms(bm)} | {ms(am)} "
            f"| {am[1] / a1[1]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
