"""A small, deterministic tracking-benchmark set in PySOT's dataset-JSON form, with result
files of three made-up trackers: the input the parity values of
``tests/trainers/test_tracking_parity.py`` were computed on with PySOT's own toolkit.

Only the first frame of each sequence is an image (PySOT's toolkit and ours read the
image size from it); everything else is numbers drawn from fixed seeds and written with
fixed decimals, so the same files come out on any machine.

Run ``python -m tests.trainers.tracking_parity_data DIR`` to write the set (that is how the
reference values were made); the tests call :func:`write_parity_set`.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

TRACKERS = ("alpha", "beta", "gamma")
VOT_NAMES = ("VOT2016", "VOT2018", "VOT2019")
#: Sequences of the VOT sets: (name, frames, (width, height), polygons?).
VOT_SEQUENCES = (
    ("bag", 180, (320, 240), True),
    ("ball", 260, (480, 360), True),
    ("car", 330, (400, 300), False),
    ("dinosaur", 410, (640, 360), True),
)
OPE_SEQUENCES = (("Basket", 120, (320, 240)), ("Bolt", 90, (480, 270)), ("Car4", 150, (400, 300)))
OTB_ATTRIBUTES = {"Basket": ["IV", "OCC"], "Bolt": ["SV"], "Car4": ["IV", "SV", "OCC"]}
LT_SEQUENCES = (("ballet", 140, (320, 240)), ("bicycle", 110, (400, 300)), ("car9", 90, (360, 270)))


def _image(root: Path, rel: str, size: tuple[int, int]) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 110, 130)).save(path)


def _walk(rng: np.random.Generator, n: int, size: tuple[int, int]) -> np.ndarray:
    """``(n, 5)`` centre x, y, width, height, angle of a target wandering over the image
    (sometimes across its border)."""
    w_img, h_img = size
    out = np.zeros((n, 5))
    pos = np.array([w_img * rng.uniform(0.3, 0.7), h_img * rng.uniform(0.3, 0.7)])
    vel = rng.normal(0, 2, 2)
    dims = np.array([w_img * rng.uniform(0.1, 0.3), h_img * rng.uniform(0.1, 0.35)])
    angle = rng.uniform(-0.4, 0.4)
    for i in range(n):
        vel = 0.9 * vel + rng.normal(0, 1.5, 2)
        pos = np.clip(pos + vel, [-0.05 * w_img, -0.05 * h_img], [1.05 * w_img, 1.05 * h_img])
        dims = np.clip(dims * math.exp(rng.normal(0, 0.02)), 8, [0.6 * w_img, 0.6 * h_img])
        angle += rng.normal(0, 0.03)
        out[i] = (*pos, *dims, angle)
    return out


def _polygon(state: np.ndarray) -> list[float]:
    cx, cy, w, h, t = state
    c, s = math.cos(t), math.sin(t)
    pts = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return [round(v, 2) for x, y in pts for v in (cx + c * x - s * y, cy + s * x + c * y)]


def _rect(state: np.ndarray, ndigits: int | None = 0) -> list[float]:
    cx, cy, w, h, _ = state
    return [float(round(v, ndigits)) for v in (cx - w / 2, cy - h / 2, w, h)]


def _noisy_box(rng: np.random.Generator, box: list[float], spread: float) -> list[float]:
    x, y, w, h = box
    if rng.random() < 0.04:  # a wild miss
        return [round(x + rng.uniform(-3, 3) * w, 4), round(y + rng.uniform(-3, 3) * h, 4),
                round(w, 4), round(h, 4)]  # fmt: skip
    return [
        round(x + rng.normal(0, spread) * w, 4),
        round(y + rng.normal(0, spread) * h, 4),
        round(w * math.exp(rng.normal(0, spread)), 4),
        round(h * math.exp(rng.normal(0, spread)), 4),
    ]


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


# -- one-pass sets -----------------------------------------------------------------------


def _write_ope(root: Path, results: Path, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder = root / name
    meta = {}
    gts = {}
    for seq, n, size in OPE_SEQUENCES:
        states = _walk(rng, n, size)
        gt = [_rect(s) for s in states]
        if name == "UAV123":
            for i in rng.choice(n, 4, replace=False):
                gt[i] = [float("nan")] * 4
        entry = {
            "video_dir": seq,
            "init_rect": gt[0],
            "img_names": [f"{seq}/img/{i + 1:04d}.jpg" for i in range(n)],
            "gt_rect": gt,
            "attr": OTB_ATTRIBUTES[seq] if name != "LaSOT" else [],
        }
        if name == "LaSOT":
            absent = [1] * n
            start = int(rng.integers(10, n - 20))
            for i in range(start, start + int(rng.integers(3, 12))):
                absent[i] = 0
                gt[i] = [0.0, 0.0, 0.0, 0.0]
            entry["absent"] = absent
        meta[seq] = entry
        gts[seq] = gt
        _image(folder, entry["img_names"][0], size)
    (folder / f"{name}.json").write_text(json.dumps(meta))
    for k, tracker in enumerate(TRACKERS):
        for seq, _, _ in OPE_SEQUENCES:
            spread = 0.04 + 0.05 * k
            rows = [gts[seq][0]] + [
                _noisy_box(rng, g if not math.isnan(g[0]) and g[2] > 0 else gts[seq][0], spread)
                for g in gts[seq][1:]
            ]
            _lines(results / name / tracker / f"{seq}.txt", [",".join(map(str, r)) for r in rows])


# -- VOT -----------------------------------------------------------------------------------


def _vot_run(rng: np.random.Generator, gt: list[list[float]], kind: str, fail_rate: float):
    """Lines of a supervised run: markers and boxes or polygons near the truth."""
    lines: list[str] = []
    n = len(gt)
    restart = 0
    for i in range(n):
        if i < restart:
            lines.append("0")
            continue
        if i == restart:
            lines.append("1")
            continue
        if rng.random() < fail_rate:
            lines.append("2")
            restart = i + 5
            continue
        g = np.asarray(gt[i])
        if len(g) == 8:
            xs, ys = g[0::2], g[1::2]
            box = [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        else:
            box = list(g)
        if kind == "polygon":
            x, y, w, h = _noisy_box(rng, box, 0.05)
            t = rng.normal(0, 0.1)
            c, s = math.cos(t), math.sin(t)
            cx, cy = x + w / 2, y + h / 2
            pts = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
            values = [v for px, py in pts for v in (cx + c * px - s * py, cy + s * px + c * py)]
        else:
            values = _noisy_box(rng, box, 0.06 if kind == "box" else 0.12)
        lines.append(",".join(f"{float(np.float32(v)):.4f}" for v in values))
    return lines


def _write_vot(root: Path, results: Path, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder = root / name
    meta = {}
    gts = {}
    tag_names = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")
    for seq, n, size, polygons in VOT_SEQUENCES:
        states = _walk(rng, n, size)
        gt = [_polygon(s) if polygons else _rect(s, 2) for s in states]
        entry = {
            "video_dir": seq,
            "init_rect": _rect(states[0], 2),
            "img_names": [f"{seq}/color/{i + 1:08d}.jpg" for i in range(n)],
            "gt_rect": gt,
        }
        for tag in tag_names:
            flags = np.zeros(n, int)
            for _ in range(int(rng.integers(0, 4))):
                a = int(rng.integers(0, n))
                flags[a : a + int(rng.integers(5, 60))] = 1
            entry[tag] = flags.tolist()
        meta[seq] = entry
        gts[seq] = gt
        _image(folder, entry["img_names"][0], size)
    (folder / f"{name}.json").write_text(json.dumps(meta))
    # gamma is stochastic on VOT2018: 15 runs a sequence (averaged, as PySOT does)
    runs15 = 15 if name == "VOT2018" else 1
    kinds = {
        "alpha": ("box", 0.004, 1),
        "beta": ("polygon", 0.008, 1),
        "gamma": ("loose", 0.02, runs15),
    }
    for tracker, (kind, rate, runs) in kinds.items():
        for seq, *_ in VOT_SEQUENCES:
            for run in range(1, runs + 1):
                lines = _vot_run(rng, gts[seq], kind, rate)
                path = results / name / tracker / "baseline" / seq / f"{seq}_{run:03d}.txt"
                _lines(path, lines)


# -- VOT-LT --------------------------------------------------------------------------------


def _write_lt(root: Path, results: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    name = "VOT2018-LT"
    folder = root / name
    meta = {}
    gts = {}
    for seq, n, size in LT_SEQUENCES:
        states = _walk(rng, n, size)
        gt = [_rect(s, 2) for s in states]
        a = int(rng.integers(20, n - 30))
        for i in range(a, a + int(rng.integers(5, 25))):
            gt[i] = [float("nan")] * 4
        meta[seq] = {
            "video_dir": seq,
            "init_rect": gt[0],
            "img_names": [f"{seq}/color/{i + 1:08d}.jpg" for i in range(n)],
            "gt_rect": gt,
        }
        gts[seq] = gt
        _image(folder, meta[seq]["img_names"][0], size)
    (folder / f"{name}.json").write_text(json.dumps(meta))
    for k, tracker in enumerate(TRACKERS):
        for seq, _, _ in LT_SEQUENCES:
            boxes, scores = ["1"], [""]
            last = gts[seq][0]
            for g in gts[seq][1:]:
                present = not math.isnan(g[0])
                last = g if present else last
                box = _noisy_box(rng, last, 0.05 + 0.04 * k)
                score = rng.uniform(0.5, 1.0) if present else rng.uniform(0.0, 0.7)
                if rng.random() < 0.05:
                    score = 0.0
                boxes.append(",".join(str(v) for v in box))
                scores.append(f"{score:.6f}")
            base = results / name / tracker / "longterm" / seq
            _lines(base / f"{seq}_001.txt", boxes)
            _lines(base / f"{seq}_001_confidence.value", scores)


# -- GOT-10k (scored by the GOT-10k toolkit, not PySOT's) --------------------------------

GOT10K_SEQUENCES = (
    ("GOT-10k_Val_000001", 40, (320, 240)),
    ("GOT-10k_Val_000002", 55, (480, 270)),
    ("GOT-10k_Val_000003", 30, (400, 300)),
)


def _write_got10k(root: Path, results: Path, seed: int) -> None:
    """GOT-10k's val layout (empty frame files: only their names are read) and results of
    three trackers, the third with three repetitions."""
    rng = np.random.default_rng(seed)
    split = root / "GOT-10k" / "val"
    gts = {}
    for seq, n, (w, h) in GOT10K_SEQUENCES:
        folder = split / seq
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (folder / f"{i + 1:08d}.jpg").touch()
        gt = [_rect(s, 4) for s in _walk(rng, n, (w, h))]
        cover = rng.integers(0, 9, n)
        cover[0] = 8
        _lines(folder / "groundtruth.txt", [",".join(f"{v:.4f}" for v in g) for g in gt])
        _lines(folder / "cover.label", [str(int(c)) for c in cover])
        _lines(folder / "absence.label", [str(int(c == 0)) for c in cover])
        _lines(folder / "cut_by_image.label", ["0"] * n)
        meta = ["[METAINFO]", "object_class: product", f"resolution: ({w}, {h})"]
        _lines(folder / "meta_info.ini", meta)
        gts[seq] = gt
    _lines(split / "list.txt", [seq for seq, *_ in GOT10K_SEQUENCES])
    for k, tracker in enumerate(TRACKERS):
        for seq, n, _ in GOT10K_SEQUENCES:
            base = results / "GOT-10k" / tracker / seq
            for run in range(1, 4 if k == 2 else 2):
                rows = [gts[seq][0]] + [_noisy_box(rng, g, 0.04 + 0.05 * k) for g in gts[seq][1:]]
                _lines(base / f"{seq}_{run:03d}.txt", [",".join(map(str, r)) for r in rows])
            _lines(base / f"{seq}_time.txt", [f"{0.01 + 0.001 * (i % 7):.6f}" for i in range(n)])


def write_parity_set(root: Path) -> tuple[Path, Path]:
    """Write the datasets (``root/data/<NAME>/<NAME>.json`` + first frames) and results
    (``root/results/<NAME>/<tracker>/...``); returns both folders."""
    data, results = root / "data", root / "results"
    for i, name in enumerate(("OTB100", "UAV123", "LaSOT")):
        _write_ope(data, results, name, seed=100 + i)
    for i, name in enumerate(VOT_NAMES):
        _write_vot(data, results, name, seed=200 + i)
    _write_lt(data, results, seed=300)
    _write_got10k(data, results, seed=400)
    return data, results


if __name__ == "__main__":  # pragma: no cover
    write_parity_set(Path(sys.argv[1]))


def overlap_pairs(
    count: int = 600, seed: int = 7
) -> list[tuple[list[float], list[float], list[int] | None]]:
    """Random region pairs ``(a, b, bounds)`` for VOT's overlap: boxes and rotated,
    jittered polygons, near each other or not, some special, some beyond the image, with
    image bounds ``(width, height)`` or none."""
    rng = np.random.default_rng(seed)

    def rect() -> list[float]:
        x, y = rng.uniform(-40, 300, 2)
        w, h = rng.uniform(0.3, 120, 2)
        return [round(float(v), 4) for v in (x, y, w, h)]

    def poly() -> list[float]:
        cx, cy = rng.uniform(-20, 300, 2)
        w, h = rng.uniform(1, 120, 2)
        t = rng.uniform(0, np.pi)
        c, s = np.cos(t), np.sin(t)
        base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        pts = base @ np.array([[c, -s], [s, c]]).T + [cx, cy] + rng.normal(0, 2, (4, 2))
        return [round(float(v), 2) for v in pts.ravel()]

    pairs = []
    for _ in range(count):
        a = rect() if rng.random() < 0.5 else poly()
        if rng.random() < 0.6:
            b = [v + rng.normal(0, 8) for v in a]
            if len(b) == 4:
                b[2], b[3] = abs(b[2]), abs(b[3])
            b = [round(float(v), 3) for v in b]
            if rng.random() < 0.3:
                b = rect()
        else:
            b = rect() if rng.random() < 0.5 else poly()
        if rng.random() < 0.05:
            b = [float(rng.integers(0, 3))]
        bounds = None
        if rng.random() >= 0.2:
            bounds = [int(rng.integers(100, 320)), int(rng.integers(100, 320))]
        pairs.append((a, b, bounds))
    return pairs
