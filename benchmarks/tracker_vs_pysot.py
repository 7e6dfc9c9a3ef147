"""Tracker step time next to PySOT's own tracker, both running the same weights.

For each SiamRPN++ model (PySOT's ``siamrpn_alex_dwxcorr``, ``siamrpn_mobilev2_l234_dwxcorr``,
``siamrpn_r50_l234_dwxcorr``), PySOT's ``ModelBuilder`` is built from the checkout's config
with seeded random weights, its batch-norm statistics set from one pass over crops of the
sequence (a random ResNet-50's boxes overflow otherwise), saved as PySOT saves a model and
loaded into our recipe (``siamrpnpp_alexnet``, ``_mobilenetv2``, ``_r50``) with
``matcher.load(recipe, weights=..., prepare=True)``: the published-checkpoint loader, the
network prepared for inference (batch norms folded, convolutions packed for oneDNN, in
``--precision``; ``--as-loaded``: unprepared). Both trackers start on the same frame and
box of one synthetic 640x480 sequence (a textured 80x64 target moving a few pixels per
frame), track untimed warm-up frames, then the timed ones, the two ``track`` calls
interleaved, alternately first. PySOT (BGR frames, ``track`` under ``torch.no_grad()``)
needs torch, numpy, OpenCV and yacs (``--pysot-deps DIR``: a folder holding yacs, e.g.
``pip install --target DIR yacs``).

    python benchmarks/tracker_vs_pysot.py PYSOT_PATH [--models alex,mobilev2,r50] [--frames 50]
        [--warmup 3] [--threads 1] [--pysot-deps DIR] [--as-loaded] [--precision bf16]

Prints a Markdown table: median ms per ``track`` for both, the ratio, and how closely the
boxes agree (lowest IoU, largest centre gap). A bad PYSOT_PATH, an unknown model or a
missing yacs is one line and exit status 2. Compare ratios, not times, on shared CPUs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torchvision.ops import box_iou

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matcher

PROG = "tracker_vs_pysot"
#: Short name -> (PySOT experiment, our recipe).
MODELS = {
    "alex": ("siamrpn_alex_dwxcorr", "siamrpnpp_alexnet"),
    "mobilev2": ("siamrpn_mobilev2_l234_dwxcorr", "siamrpnpp_mobilenetv2"),
    "r50": ("siamrpn_r50_l234_dwxcorr", "siamrpnpp_r50"),
}
#: Files a PySOT checkout must have for this benchmark (besides the experiment configs).
PYSOT_FILES = ("pysot/core/config.py", "pysot/models/model_builder.py", "pysot/tracker/__init__.py")
FRAME_SIZE = (480, 640)  # height, width
TARGET_SIZE = (64, 80)  # height, width


class UsageError(Exception):
    """A bad argument: reported as one line, exit status 2."""


# -- arguments and PySOT import ----------------------------------------------------------


def check_arguments(pysot_path: str, models: str) -> tuple[Path, list[str]]:
    """Validate the checkout and the model list before any work.

    Returns:
        The checkout's root and the short model names, in the order given.

    Raises:
        UsageError: unknown model, missing path, or a folder that is not a PySOT checkout.
    """
    names = [n.strip() for n in models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise UsageError(f"unknown model(s) {unknown or models!r}; choose from {sorted(MODELS)}")
    root = Path(pysot_path)
    if not root.is_dir():
        raise UsageError(f"PySOT checkout {pysot_path!r} does not exist or is not a folder")
    wanted = list(PYSOT_FILES) + [f"experiments/{MODELS[n][0]}/config.yaml" for n in names]
    missing = [f for f in wanted if not (root / f).is_file()]
    if missing:
        raise UsageError(
            f"{pysot_path!r} is not a PySOT checkout (no {missing[0]}); "
            "give the root of github.com/STVIR/pysot"
        )
    return root.resolve(), names


def import_pysot(root: Path, deps: str | None) -> dict[str, Any]:
    """PySOT's global config, its defaults, ``ModelBuilder`` and ``build_tracker``.

    Raises:
        UsageError: yacs (PySOT's config library) cannot be imported.
    """
    if deps:
        sys.path.append(str(Path(deps).resolve()))
    try:
        import yacs  # noqa: F401
    except ImportError:
        raise UsageError(
            "PySOT needs yacs: pip install --target DIR yacs, then pass --pysot-deps DIR"
        ) from None
    sys.path.insert(0, str(root))
    from pysot.core.config import cfg
    from pysot.models.model_builder import ModelBuilder
    from pysot.tracker.tracker_builder import build_tracker

    return {
        "cfg": cfg,
        "defaults": cfg.clone(),
        "ModelBuilder": ModelBuilder,
        "build_tracker": build_tracker,
    }


def select_experiment(pysot: dict[str, Any], config_file: Path) -> None:
    """Reset PySOT's global config to its defaults and merge one experiment, on the CPU.

    PySOT's modules hold a reference to the one global ``cfg``, and its tracker reads it on
    every call. So the config is reset in place, and it stays selected while the model runs.
    """
    cfg = pysot["cfg"]
    cfg.defrost()
    cfg.clear()
    cfg.update(pysot["defaults"].clone())
    cfg.merge_from_file(str(config_file))
    cfg.CUDA = False
    cfg.freeze()


# -- workload ----------------------------------------------------------------------------


def synthetic_frames(
    count: int, *, seed: int = 0
) -> tuple[list[np.ndarray], tuple[float, float, float, float]]:
    """A textured scene with a textured target drifting a few pixels per frame.

    Returns:
        ``count`` BGR frames, each ``(480, 640, 3)`` uint8, and the target's box in the
        first frame, ``(x0, y0, x1, y1)`` pixels.
    """
    rng = np.random.default_rng(seed)
    height, width = FRAME_SIZE
    coarse = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    background = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(0, 48, (height, width, 3), dtype=np.uint8)
    background = cv2.add(background, grain)
    t_h, t_w = TARGET_SIZE
    blocks = rng.integers(0, 256, (t_h // 8, t_w // 8, 3), dtype=np.uint8)
    target = cv2.resize(blocks, (t_w, t_h), interpolation=cv2.INTER_NEAREST)
    cv2.rectangle(target, (0, 0), (t_w - 1, t_h - 1), (255, 255, 255), 3)
    frames = []
    first_box = (0.0, 0.0, 0.0, 0.0)
    for i in range(count):
        x = round(width / 2 - t_w / 2 + 150 * math.sin(i / 25))
        y = round(height / 2 - t_h / 2 + 80 * math.sin(i / 17))
        frame = background.copy()
        frame[y : y + t_h, x : x + t_w] = target
        frames.append(frame)
        if i == 0:
            first_box = (float(x), float(y), float(x + t_w), float(y + t_h))
    return frames, first_box


def _crops(
    frames: list[np.ndarray], center: tuple[float, float], side: int, out: int
) -> torch.Tensor:
    """Square crops of ``side`` pixels around ``center`` and 40 px left and right of it,
    resized to ``out``: ``(3 * len(frames), 3, out, out)`` float32 BGR, values 0-255."""
    crops = []
    for frame in frames:
        padded = cv2.copyMakeBorder(frame, side, side, side, side, cv2.BORDER_REFLECT)
        for dx in (-40, 0, 40):
            x0 = round(center[0] - side / 2 + dx) + side
            y0 = round(center[1] - side / 2) + side
            crop = padded[y0 : y0 + side, x0 : x0 + side]
            crops.append(cv2.resize(crop, (out, out), interpolation=cv2.INTER_LINEAR))
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous().float()


def calibrate_batch_norm(
    model: torch.nn.Module,
    frames: list[np.ndarray],
    box: tuple[float, float, float, float],
    *,
    exemplar_size: int,
    instance_size: int,
) -> None:
    """Set the batch-norm statistics of PySOT's random network from crops of the scene.

    With the default statistics (mean 0, variance 1), a random ResNet-50's activations blow
    up and its boxes overflow to infinity. One pass in training mode over template and
    search crops, cut as the tracker cuts them, keeps the outputs in a normal range. It
    goes through PySOT's own ``template``/``track`` methods. Leaves the model in eval mode.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    s_z = math.sqrt((w + (w + h) / 2) * (h + (w + h) / 2))
    center = ((x0 + x1) / 2, (y0 + y1) / 2)
    z = _crops(frames, center, round(s_z), exemplar_size)
    x = _crops(frames, center, round(s_z * instance_size / exemplar_size), instance_size)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration pass
    model.train()
    with torch.no_grad():
        model.template(z)
        model.track(x)
    model.eval()


# -- one model ---------------------------------------------------------------------------


def build_pair(
    pysot: dict[str, Any],
    root: Path,
    name: str,
    *,
    seed: int,
    workdir: Path,
    frames: list[np.ndarray],
    box: tuple[float, float, float, float],
    **load: Any,
) -> tuple[Any, Any, list[str]]:
    """PySOT's tracker and ours on the same seeded random weights (batch-norm statistics
    calibrated on ``frames`` around ``box``, see :func:`calibrate_batch_norm`); ``load``:
    ``matcher.load``'s ``prepare`` and ``precision``.

    Returns:
        PySOT's ``SiamRPNTracker``, our tracker, and the hyper-parameters that differ
        between PySOT's experiment config and our recipe (empty when they agree).
    """
    experiment, recipe = MODELS[name]
    select_experiment(pysot, root / "experiments" / experiment / "config.yaml")
    torch.manual_seed(seed)
    model = pysot["ModelBuilder"]()
    track = pysot["cfg"].TRACK
    calibrate_batch_norm(
        model, frames, box, exemplar_size=track.EXEMPLAR_SIZE, instance_size=track.INSTANCE_SIZE
    )
    weights = workdir / f"{experiment}.pth"
    torch.save(model.state_dict(), weights)  # a plain state dict, as PySOT saves a model
    ours = matcher.load(recipe, weights=weights, device="cpu", **load)
    ours_tracker = ours.tracker()
    params = ours_tracker.params
    pairs = {
        "penalty_k": (track.PENALTY_K, params.penalty_k),
        "window_influence": (track.WINDOW_INFLUENCE, params.window_influence),
        "lr": (track.LR, params.lr),
        "instance_size": (track.INSTANCE_SIZE, params.instance_size),
        "exemplar_size": (track.EXEMPLAR_SIZE, params.geometry.exemplar_size),
        "context_amount": (track.CONTEXT_AMOUNT, params.geometry.context_amount),
    }
    differ = [f"{k} {a} vs {b}" for k, (a, b) in pairs.items() if not math.isclose(a, b)]
    return pysot["build_tracker"](model), ours_tracker, differ


def _xywh_to_xyxy(box: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in box)
    return (x, y, x + w, y + h)


def run_pair(
    pysot_tracker: Any,
    ours_tracker: Any,
    frames_bgr: list[np.ndarray],
    first_box: tuple[float, float, float, float],
    *,
    warmup: int,
) -> dict[str, float]:
    """Initialise both trackers on frame 0, track the rest interleaved.

    Returns:
        ``pysot_ms`` and ``ours_ms`` (median per timed frame), ``min_iou`` and
        ``max_center_px`` over every tracked frame.
    """
    frames_rgb = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames_bgr]
    x0, y0, x1, y1 = first_box
    with torch.no_grad():
        pysot_tracker.init(frames_bgr[0], [x0, y0, x1 - x0, y1 - y0])
    ours_tracker.init(frames_rgb[0], first_box)

    def step_pysot(i: int) -> tuple[float, tuple[float, float, float, float]]:
        start = time.perf_counter()
        with torch.no_grad():
            out = pysot_tracker.track(frames_bgr[i])
        return time.perf_counter() - start, _xywh_to_xyxy(out["bbox"])

    def step_ours(i: int) -> tuple[float, tuple[float, float, float, float]]:
        start = time.perf_counter()
        inst = ours_tracker.track(frames_rgb[i])
        return time.perf_counter() - start, tuple(float(v) for v in inst.box)

    times: dict[str, list[float]] = {"pysot": [], "ours": []}
    boxes: dict[str, list[tuple[float, ...]]] = {"pysot": [], "ours": []}
    steps = {"pysot": step_pysot, "ours": step_ours}
    for i in range(1, len(frames_bgr)):
        order = ("pysot", "ours") if i % 2 else ("ours", "pysot")
        for who in order:
            seconds, box = steps[who](i)
            boxes[who].append(box)
            if i > warmup:
                times[who].append(seconds)
    theirs = torch.tensor(boxes["pysot"], dtype=torch.float64)
    mine = torch.tensor(boxes["ours"], dtype=torch.float64)
    iou = box_iou(theirs, mine).diagonal()
    distance = ((theirs[:, :2] + theirs[:, 2:]) - (mine[:, :2] + mine[:, 2:])).norm(dim=1) / 2
    return {
        "pysot_ms": statistics.median(times["pysot"]) * 1e3,
        "ours_ms": statistics.median(times["ours"]) * 1e3,
        "min_iou": float(iou.min()),
        "max_center_px": float(distance.max()),
    }


# -- entry point ---------------------------------------------------------------------------


def _machine_line(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    load = f", load {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return (
        f"{cpu}, {os.cpu_count()} CPUs{load}; {threads} torch/OpenCV threads; "
        f"torch {torch.__version__}, numpy {np.__version__}, OpenCV {cv2.__version__}, "
        f"Python {platform.python_version()}; device cpu"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("pysot_path", metavar="PYSOT_PATH", help="root of a PySOT checkout")
    parser.add_argument("--models", default=",".join(MODELS), help=f"of {','.join(MODELS)}")
    parser.add_argument("--frames", type=int, default=50, help="timed frames per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="weights and scene seed")
    parser.add_argument("--pysot-deps", default=None, help="folder holding yacs, if needed")
    parser.add_argument("--as-loaded", action="store_true", help="our network unprepared")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()
    try:
        if args.frames < 1 or args.warmup < 0 or args.threads < 1:
            raise UsageError("--frames and --threads must be >= 1, --warmup >= 0")
        root, names = check_arguments(args.pysot_path, args.models)
        pysot = import_pysot(root, args.pysot_deps)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        sys.exit(2)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    frames, first_box = synthetic_frames(1 + args.warmup + args.frames, seed=args.seed)
    print(f"# tracker step vs PySOT — {_machine_line(args.threads)}")
    ours = f"prepared for inference (batch norms folded, convolutions packed, {args.precision})"
    print(
        f"PySOT from {root}; seeded random weights (seed {args.seed}, batch-norm statistics "
        f"from the scene), identical for both; {args.frames} timed frames of "
        f"{FRAME_SIZE[1]}x{FRAME_SIZE[0]} after {args.warmup} warm-up frames, interleaved; "
        f"medians; ours {'as loaded' if args.as_loaded else ours}.\n"
    )
    print("| model | PySOT ms/frame | ours ms/frame | ours/PySOT | box agreement |")
    print("|---|---|---|---|---|")
    notes = []
    with tempfile.TemporaryDirectory(prefix="pysot-weights-") as tmp:
        for name in names:
            experiment, recipe = MODELS[name]
            pysot_tracker, ours_tracker, differ = build_pair(
                pysot,
                root,
                name,
                seed=args.seed,
                workdir=Path(tmp),
                frames=frames[:4],
                box=first_box,
                prepare=not args.as_loaded,
                precision=args.precision,
            )
            r = run_pair(pysot_tracker, ours_tracker, frames, first_box, warmup=args.warmup)
            print(
                f"| {experiment} / {recipe} | {r['pysot_ms']:.1f} | {r['ours_ms']:.1f} | "
                f"{r['ours_ms'] / r['pysot_ms']:.2f} | min IoU {r['min_iou']:.4f}, "
                f"max centre gap {r['max_center_px']:.2g} px |",
                flush=True,
            )
            if differ:
                notes.append(f"{recipe}: hyper-parameters differ from PySOT's: {differ}")
    for note in notes:
        print(f"\nNote — {note}")


if __name__ == "__main__":
    main()
