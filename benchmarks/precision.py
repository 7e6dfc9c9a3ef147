"""float32 vs bfloat16 (``inference.precision``) on the same weights: speed and agreement.

``inference.precision: bf16`` makes a prepared network's convolutions compute in
bfloat16 (:mod:`matcher.inference_pack`). This script measures, per recipe, on the
workload of ``benchmarks/match_speed.py`` (the coffee product in the 640x480 cluttered
scene; ``match_many`` with 15 other photographs' crops): the tracker step, ``match(1)``
and ``match_many(16)``, each the median of ``--repeats`` calls after a warm-up, the two
matchers called alternately, and how far the bfloat16 answers are from the float32 ones
(the best match's box IoU and score, and the tracker's box after the timed steps). A
recipe with shipped weights (``siammask_small``) runs them; the others get the same
random weights in both. Random weights make near-ties, so their agreement is a
pessimistic measure; the accuracy of the default in bfloat16 is measured with
``siammatch eval pairs`` (``benchmarks/RESULTS.md``).

    python benchmarks/precision.py [--recipes a,b] [--repeats N] [--threads N]

Prints whether this CPU has bfloat16 hardware and a Markdown table (ms as wall / CPU).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402

import matcher  # noqa: E402
from benchmarks._common import alternating_medians, recipe_arguments  # noqa: E402
from benchmarks.match_speed import ms, one_and_many  # noqa: E402
from benchmarks.matcher_latency import _scene  # noqa: E402
from matcher.checkpoints.shipped import shipped_weights  # noqa: E402
from matcher.inference_pack import bf16_native  # noqa: E402
from matcher.inference_prep import precision_of, prepare_for_inference  # noqa: E402

DEFAULT = (
    "siammask_small,siamrpnpp_alexnet,siamrpnpp_mobilenetv2,siamrpnpp_r50,siamfcpp_alexnet,"
    "siammask_r50"
)
PRECISIONS = ("fp32", "bf16")


def load_pair(name: str) -> dict[str, object]:
    """The recipe prepared in float32 and in bfloat16, with the same weights."""
    if shipped_weights(name) is not None:
        return {p: matcher.load_trained(name, precision=p) for p in PRECISIONS}
    torch.manual_seed(0)
    pair = {p: matcher.load(name) for p in PRECISIONS}
    pair["bf16"].net.load_state_dict(pair["fp32"].net.state_dict())
    for p, m in pair.items():
        prepare_for_inference(m.net, precision=p)
    return pair


def _iou(a, b) -> float:
    return float(box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0])


def bench(name: str, repeats: int) -> dict[str, object]:
    models = load_pair(name)
    product, scene = _scene()
    out: dict[str, object] = {"computed": {p: precision_of(m.net) for p, m in models.items()}}
    if models["fp32"].recipe.inference.track is not None:
        box = (300, 200, 420, 320)
        trackers = {p: m.tracker() for p, m in models.items()}
        for t in trackers.values():
            t.init(scene, box)
        calls = [lambda t=t: t.track(scene) for t in trackers.values()]
        steps = alternating_medians(calls, repeats * 5)
        out["track"] = dict(zip(PRECISIONS, steps, strict=True))
        boxes = [t.track(scene).box for t in trackers.values()]
        out["track_iou"] = _iou(*boxes)
    timings = one_and_many(models, repeats)
    out.update({k: {p: timings[p][k] for p in PRECISIONS} for k in ("match", "many")})
    ref = matcher.Reference.from_image(product)
    best = [m.match(m.encode_reference(ref), scene).best for m in models.values()]
    if all(b is not None for b in best):
        out["match_iou"] = _iou(best[0].box, best[1].box)
        out["score_gap"] = abs(best[0].score - best[1].score)
    else:
        out["match_iou"] = "both none" if best == [None, None] else "one none"
    return out


def main() -> None:
    args = recipe_arguments(__doc__, DEFAULT)
    print(
        f"# float32 vs bfloat16 — {platform.processor() or platform.machine()}, "
        f"bfloat16 hardware: {bf16_native()}, {args.threads} torch thread(s), "
        f"torch {torch.__version__}, {args.repeats} repeats; ms as wall / CPU\n"
    )
    print(
        "| recipe | computed in | track fp32 | track bf16 | ratio | match fp32 | match bf16 "
        "| ratio (CPU) | many(16) fp32 | many(16) bf16 | ratio (CPU) | agreement |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in args.recipes.split(","):
        r = bench(name, args.repeats)
        track = r.get("track")
        t = (
            f"{track['fp32'][0] * 1e3:.1f} | {track['bf16'][0] * 1e3:.1f} "
            f"| {track['bf16'][1] / track['fp32'][1]:.2f}"
            if track
            else "– | – | –"
        )
        m, many = r["match"], r["many"]
        agree = (
            f"match IoU {r['match_iou']:.3f}"
            if isinstance(r["match_iou"], float)
            else (f"match: {r['match_iou']}")
        )
        if "score_gap" in r:
            agree += f", score gap {r['score_gap']:.4f}"
        if "track_iou" in r:
            agree += f", track IoU {r['track_iou']:.3f}"
        print(
            f"| {name} | {'/'.join(r['computed'].values())} | {t} | {ms(m['fp32'])} "
            f"| {ms(m['bf16'])} | {m['bf16'][1] / m['fp32'][1]:.2f} | {ms(many['fp32'])} "
            f"| {ms(many['bf16'])} | {many['bf16'][1] / many['fp32'][1]:.2f} | {agree} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
