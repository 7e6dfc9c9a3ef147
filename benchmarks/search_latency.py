"""Latency of a catalog scene search (``/v1/search``) and what each stage costs.

Fixed workload: a catalog of ``--products`` (default 1,000) products of the synthetic
generator (:mod:`trainers.data.synth`; the same photos as ``siammatch synth --seed 0``
and :mod:`api.default_catalog`), made with the default matcher (``siammask_small`` from
``weights/``) and the catalog's shipped embedder (``weights/embedder_default.pth``), on
the default ``Flat`` index. It is built once (with progress bars) and kept in ``--cache``
(default ``var/bench/search-catalog-<products>``); delete the folder to rebuild. Then
``--scenes`` (8) 640x480 scenes of the generator (shelf, table and photo layouts; the
dataset's scenes 0, 1, ... of seed 0, so they hold catalog products, lookalikes and
foreign products), JPEG-encoded at their own quality, each go through
:func:`index.search.search_scene` with the service's settings (``k`` 5, 10 candidates, the
matcher's threshold): one cold pass (template features read from the database), then
``--repeats`` (2) warm passes. Each figure is a median over scenes x warm passes (cold
pass: over scenes). The stages are those of ``search_scene``'s ``timings``; inside the
batched verification (``match_many``) the matcher's stages are timed by wrapping its
stage objects' methods (nothing in ``matcher/`` changes). Found: products with a visible
instance (at least the generator's ``min_visible`` share) among the hits, over all such
products; false hits: hits that are not in the scene.

    python benchmarks/search_latency.py [--products 1000] [--scenes 8] [--repeats 2]
                                        [--candidates 10] [--threads N] [--cache DIR]
                                        [--match-threads N] [--before] [--previous]
                                        [--first-scene N]

``--previous`` searches as at the end of issue 15's third step (before its fourth): the
whole scene and a 3 x 3 grid of half-size windows as retrieval views, and OpenCV's
three-channel correlation in the template stage; pass ``--candidates 20``, the service's
setting then, to reproduce that search. ``--first-scene`` starts at another scene of the
dataset (the fourth step chose its settings on scenes 100-111).

The matcher is loaded as the service loads it (``load_trained``; ``--precision bf16`` as
with ``SIAMMATCH_PRECISION=bf16``); ``--match-threads`` sets
``SIAMMATCH_MATCH_THREADS`` (:mod:`matcher.inference.parallel`); with more than one, the
matcher's stages inside ``verify`` are summed over its threads. ``--before`` loads the
default as it was shipped before issue 15's third step instead (48 verified boxes, the
template pyramid up to 2.5x, RANSAC, the embedder not prepared, one match thread; see
``benchmarks/match_stages.py``).

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

# Run as a script, this folder is sys.path[0]; import the project from its root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from benchmarks._common import opencv_correlation  # noqa: E402

SEED = 0
SIZE = (480, 640)
#: ``search_scene`` stages, then the matcher's inside ``verify`` (indented in the table).
STAGES = ("decode", "embed", "retrieve", "templates", "verify", "rerank")
INNER = (
    ("siamese search", "of which backbone passes"),
    ("scene prep: geometric", None),
    ("scene prep: template", None),
    ("embedder verification", None),
    ("geometric evidence", None),
    ("template/NCC", None),
    ("masks", None),
)


def build_catalog(folder: Path, products: int, matcher) -> None:
    """Create the synthetic catalog in ``folder`` (staged, renamed into place at the end)."""
    from tqdm import tqdm

    from api.default_catalog import synth_products
    from index.catalog import Catalog

    staging = folder.parent / f".{folder.name}.building"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(staging, matcher=matcher, create=True)
    try:
        chunk: list = []
        items = synth_products(products, seed=SEED)
        for pid, photo, metadata in tqdm(items, total=products, desc="catalog", unit="product"):
            chunk.append((pid, photo, metadata, None))
            if len(chunk) == 64:
                catalog.add_many(chunk)
                chunk = []
        if chunk:
            catalog.add_many(chunk)
    finally:
        catalog.close()
    os.rename(staging, folder)


def make_scenes(products: int, count: int, first: int = 0) -> list[tuple[bytes, set[str]]]:
    """The dataset's scenes ``first`` to ``first + count - 1`` as JPEG bytes with the catalog
    ids visible."""
    from trainers.data.synth import ProductBank, SceneSettings, compose_scene, scene_rng
    from trainers.data.synth.families import design_catalog, design_foreign

    settings = SceneSettings()
    bank = ProductBank(
        design_catalog(products, seed=SEED),
        design_foreign(min(max(12, products // 2), 200), seed=SEED),
    )
    out = []
    for index in range(first, first + count):
        scene = compose_scene(scene_rng(SEED, index), bank, image_size=SIZE, settings=settings)
        bgr = np.ascontiguousarray(scene.image[..., ::-1])
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
        assert ok
        present = {
            f"synth-{inst.product_id:03d}"
            for inst in scene.instances
            if inst.visible_fraction >= settings.min_visible
        }
        out.append((data.tobytes(), present))
    return out


class Probe:
    """Accumulates the time spent in wrapped methods of the matcher's stage objects."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()  # the stages run on match mode's threads
        self._local = threading.local()

    @property
    def current(self) -> str | None:
        """The stage this thread is in."""
        return getattr(self._local, "stage", None)

    def _add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def wrap(self, obj, attr: str, stage: str) -> None:
        """Replace ``obj.attr`` (a method) by a timed call on the instance."""
        if obj is None:
            return
        inner: Callable = getattr(obj, attr)

        def timed(*args, **kwargs):
            outer, self._local.stage = self.current, stage
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self._add(stage, time.perf_counter() - start)
                self._local.stage = outer

        setattr(obj, attr, timed)

    def install(self, m) -> None:
        """Wrap the stages of a :class:`matcher.SiameseMatcher` (instance attributes only)."""
        self.wrap(m, "_search", "siamese search")
        self.wrap(m.geometric, "prepare_scene", "scene prep: geometric")
        self.wrap(m.ncc, "prepare_scene", "scene prep: template")
        if m.verifier is not None:  # match_many binds the verifier to each scene
            bind = m.verifier.shared_scene

            def bound(scene):
                verifier = bind(scene)
                self.wrap(verifier, "similarities", "embedder verification")
                return verifier

            m.verifier.shared_scene = bound
        for name in ("correspondences", "evidence", "proposals"):
            self.wrap(m.geometric, name, "geometric evidence")
        for name in ("proposals", "score"):
            self.wrap(m.ncc, name, "template/NCC")
        self.wrap(m, "masker", "masks")
        started: list[float] = []

        def pre(_module, _args):
            started.append(time.perf_counter())

        def post(_module, _args, _out):
            seconds = time.perf_counter() - started.pop()
            if self.current == "siamese search":
                self._add("of which backbone passes", seconds)

        m.net.backbone.register_forward_pre_hook(pre)
        m.net.backbone.register_forward_hook(post)

    def take(self) -> dict[str, float]:
        with self._lock:
            out, self.seconds = dict(self.seconds), defaultdict(float)
        return out


def grid_views(scene: np.ndarray, **_ignored) -> list[np.ndarray]:
    """The retrieval views before issue 15's fourth step: the whole scene and a 3 x 3 grid of
    ``H/2 x W/2`` windows, evenly spaced from edge to edge."""
    h, w = scene.shape[:2]
    ys = np.linspace(0, h - h // 2, 3).round().astype(int)
    xs = np.linspace(0, w - w // 2, 3).round().astype(int)
    return [scene] + [scene[y : y + h // 2, x : x + w // 2] for y in ys for x in xs]


def watch_candidates(catalog) -> list[str]:
    """A list that always holds the product ids of the last search's verified candidates
    (``search_scene`` fetches their template features in one call)."""
    fetch = catalog.template_features_many
    verified: list[str] = []

    def fetched(ids, **kwargs):
        verified[:] = ids
        return fetch(ids, **kwargs)

    catalog.template_features_many = fetched
    return verified


def run(catalog, m, scenes, probe: Probe, verified: list[str], *, candidates: int) -> list[dict]:
    """One pass over the scenes: per scene, the stage times (s), the total and accuracy
    (``verified``: :func:`watch_candidates` of ``catalog``)."""
    from index.search import search_scene

    rows = []
    for data, present in scenes:
        timings: dict[str, float] = {}
        probe.take()
        start = time.perf_counter()
        hits = search_scene(catalog, m, data, k=5, candidates=candidates, timings=timings)
        total = time.perf_counter() - start
        found = {h.product_id for h in hits}
        print(f"# scene searched in {total:.2f} s", file=sys.stderr, flush=True)
        rows.append(
            {
                **timings,
                **probe.take(),
                "total": total,
                "found": len(found & present),
                "retrieved": len(set(verified) & present),
                "present": len(present),
                "false": len(found - present),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000, help="catalog products")
    parser.add_argument("--scenes", type=int, default=8, help="640x480 scenes searched")
    parser.add_argument("--repeats", type=int, default=2, help="warm passes over the scenes")
    parser.add_argument(
        "--candidates", type=int, default=10, help="products verified (the service's 10)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--cache", type=Path, default=None, help="catalog folder")
    parser.add_argument(
        "--match-threads", type=int, default=0, help="SIAMMATCH_MATCH_THREADS (0: as set)"
    )
    parser.add_argument(
        "--before",
        action="store_true",
        help="the default as shipped before issue 15's third step (benchmarks/match_stages.py)",
    )
    parser.add_argument(
        "--first-scene", type=int, default=0, help="first generator scene searched (default 0)"
    )
    parser.add_argument(
        "--previous",
        action="store_true",
        help="search as at the end of issue 15's third step: retrieval views the whole scene "
        "and a 3 x 3 grid of half-size windows, OpenCV's three-channel correlation",
    )
    parser.add_argument("--precision", choices=("fp32", "bf16"), help="SIAMMATCH_PRECISION")
    args = parser.parse_args()

    import torch

    from api.defaults import DEFAULT_RECIPE
    from index.catalog import Catalog
    from matcher.builder import load_trained
    from matcher.inference.parallel import ENV, match_threads
    from matcher.inference_prep import precision_of

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = args.cache or Path("var/bench") / f"search-catalog-{args.products}"
    if args.match_threads:
        os.environ[ENV] = str(args.match_threads)
    if args.before:
        from benchmarks.match_stages import _load

        os.environ[ENV] = "1"
        m = _load(DEFAULT_RECIPE, after=False)
    else:
        m = load_trained(DEFAULT_RECIPE, precision=args.precision)  # as the service loads it
    if not folder.is_dir():
        build_catalog(folder, args.products, m)
    scenes = make_scenes(args.products, args.scenes, args.first_scene)
    if args.previous:
        import index.search

        index.search.scene_views = grid_views
        opencv_correlation(True)
    probe = Probe()
    probe.install(m)
    with Catalog(folder, matcher=m) as catalog:
        if len(catalog) != args.products:
            raise SystemExit(f"{folder} holds {len(catalog)} products, not {args.products}")
        verified = watch_candidates(catalog)
        cold = run(catalog, m, scenes, probe, verified, candidates=args.candidates)
        warm = [
            r
            for _ in range(args.repeats)
            for r in run(catalog, m, scenes, probe, verified, candidates=args.candidates)
        ]
    _report(args, cold, warm, torch, match_threads(), precision_of(m.net))
    return 0


def _median(rows: list[dict], key: str) -> float:
    return 1000 * statistics.median(r.get(key, 0.0) for r in rows)


def _report(args, cold: list[dict], warm: list[dict], torch, workers: int, precision: str) -> None:
    found = sum(r["found"] for r in cold)
    present = sum(r["present"] for r in cold)
    false = sum(r["false"] for r in cold)
    retrieved = sum(r["retrieved"] for r in cold)
    reachable = sum(min(r["present"], 5) for r in cold)  # k = 5 hits per scene
    stable = all(
        (a["found"], a["false"]) == (b["found"], b["false"])
        for a, b in zip(cold * args.repeats, warm, strict=True)
    )
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), {workers} match "
        "thread(s); "
        f"{args.products} products, {args.scenes} scenes 640x480, k=5, "
        f"{args.candidates} candidates, {args.repeats} warm passes"
    )
    print(
        f"# scenes {args.first_scene}-{args.first_scene + args.scenes - 1}, "
        f"networks in {precision}, "
        f"{'previous (grid views, OpenCV correlation)' if args.previous else 'today'}; "
        f"{retrieved}/{present} products present among the candidates "
        f"({retrieved / max(present, 1):.0%}); "
        f"found {found}/{present} ({found / max(present, 1):.0%}; at most {reachable} with "
        f"k=5), "
        f"{false} false hits; warm passes identical to the cold one: {stable}"
    )
    print("| stage | cold ms (median) | warm ms (median) | warm share |")
    print("|---|---|---|---|")
    total = _median(warm, "total")
    lines = [(s, s) for s in STAGES]
    for outer, sub in INNER:
        lines.append((f"  verify: {outer}", outer))
        if sub:
            lines.append((f"    {sub}", sub))
    for label, key in lines:
        ms = _median(warm, key)
        print(f"| {label} | {_median(cold, key):.1f} | {ms:.1f} | {ms / total:.0%} |")
    if workers > 1:
        print(
            f"| (verify's stages are summed over its {workers} threads, so they may add up "
            "to more than its wall time) | | | |"
        )
        print(f"| **total** | {_median(cold, 'total'):.1f} | {total:.1f} | 100% |")
        return
    # what match_many spends outside the timed stages (fusion, NMS, crops, decoding)
    rest = {
        name: 1000
        * statistics.median(
            r.get("verify", 0.0) - sum(r.get(o, 0.0) for o, _ in INNER) for r in rows
        )
        for name, rows in (("cold", cold), ("warm", warm))
    }
    print(
        f"|   verify: other | {rest['cold']:.1f} | {rest['warm']:.1f} | "
        f"{rest['warm'] / total:.0%} |"
    )
    print(f"| **total** | {_median(cold, 'total'):.1f} | {total:.1f} | 100% |")


if __name__ == "__main__":
    raise SystemExit(main())
