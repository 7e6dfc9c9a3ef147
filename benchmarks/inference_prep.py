"""The network as loaded vs prepared for inference (batch norms folded, convolutions packed).

``matcher.load(..., prepare=True)`` prepares a network for inference: each convolution
followed only by a batch norm absorbs it, and a Siamese tracker's convolutions run
channels-last on weights packed for oneDNN (:mod:`matcher.inference_prep`). This script
measures what that buys, per recipe, on the workload of ``benchmarks/matcher_latency.py``
(the coffee product, the 640x480 cluttered scene, untrained weights): the tracker step and
a match, each the median of ``--repeats`` runs after a warm-up, the two networks (same
weights) run alternately so both see the same machine load.

    python benchmarks/inference_prep.py [--recipes a,b] [--repeats N] [--threads N]

Prints a Markdown table with the prepared/as-loaded ratios.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

import matcher  # noqa: E402
from benchmarks._common import alternating_medians, recipe_arguments  # noqa: E402
from benchmarks.matcher_latency import _scene  # noqa: E402

DEFAULT = "siamrpnpp_alexnet,siamrpnpp_mobilenetv2,siamrpnpp_r50,siamfcpp_alexnet,siammask_r50"


def _walls(fns: list, repeats: int) -> list[float]:
    return [wall for wall, _ in alternating_medians(fns, repeats)]


def bench(name: str, repeats: int) -> dict[str, float]:
    from matcher.inference_prep import prepare_for_inference

    plain = matcher.load(name)
    prepared = matcher.load(name)
    prepared.net.load_state_dict(plain.net.state_dict())  # the same (random) weights
    folded = prepare_for_inference(prepared.net)
    product, scene = _scene()
    box = (300, 200, 420, 320)
    trackers = [m.tracker() for m in (plain, prepared)]
    for tracker in trackers:
        tracker.init(scene, box)
    feats = [m.encode_reference(matcher.Reference.from_image(product)) for m in (plain, prepared)]
    track = _walls([lambda t=t: t.track(scene) for t in trackers], repeats * 5)
    match = _walls(
        [lambda m=m, f=f: m.match(f, scene) for m, f in zip((plain, prepared), feats, strict=True)],
        repeats,
    )
    return {"folded": folded, "track": track, "match": match}


def main() -> None:
    args = recipe_arguments(__doc__, DEFAULT)
    print(
        f"# prepared for inference — {platform.processor() or platform.machine()}, "
        f"{args.threads} torch threads, torch {torch.__version__}\n"
    )
    print(
        "| recipe | BN folded | track as loaded (ms) | track prepared (ms) | ratio "
        "| match as loaded (ms) | match prepared (ms) | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.recipes.split(","):
        r = bench(name, args.repeats)
        (t0, t1), (m0, m1) = r["track"], r["match"]
        print(
            f"| {name} | {r['folded']} | {t0 * 1e3:.1f} | {t1 * 1e3:.1f} | {t1 / t0:.2f} "
            f"| {m0 * 1e3:.0f} | {m1 * 1e3:.0f} | {m1 / m0:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
