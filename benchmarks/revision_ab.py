"""``match(1)`` and ``match_many(16)`` of two checkouts of this project, side by side.

For a change that a flag cannot switch off (issue 15's fourth step: the RPN heads' reading
of a channels-last correlation), the before is another checkout (a ``git worktree`` of the
older commit). Each recipe is timed in each checkout in a fresh process, the checkouts in
turn ``--rounds`` times, on ``benchmarks/match_speed.py``'s workload (the 640x480 scene,
the product and 15 other crops): medians of ``--repeats`` calls after a warm-up, as wall /
CPU ms, with ``--threads`` torch threads and as many match threads. A recipe with shipped
weights is loaded by ``load_trained``; the others get the same random weights (seed 0) in
both checkouts, prepared for inference, with their shipped settings.

    git worktree add /tmp/before b14b750
    python benchmarks/revision_ab.py /tmp/before [--after .] [--recipes a,b] [--rounds 2]
        [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

_WORKER = """
import json, os, statistics, sys, time
sys.path.insert(0, os.getcwd())
import torch
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
import matcher
from benchmarks.match_speed import _others
from benchmarks.matcher_latency import _scene
from matcher.builder import load_trained
from matcher.inference_prep import prepare_for_inference
name, repeats = sys.argv[1], int(sys.argv[3])
if matcher.shipped_weights(name):
    m = load_trained(name)
else:
    m = matcher.load(name)
    prepare_for_inference(m.net)
product, scene = _scene()
refs = [matcher.Reference.from_image(p) for p in [product, *_others(15)]]
feats = [m.encode_reference(r) for r in refs]
def median(fn):
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return [1000 * statistics.median(wall), 1000 * statistics.median(cpu)]
one = median(lambda: m.match(feats[0], scene))
many = median(lambda: m.match_many(feats, scene))
print(json.dumps({"one": one, "many": many}))
"""


def _time(checkout: Path, recipe: str, threads: int, repeats: int) -> dict[str, list[float]]:
    env = {**os.environ, "SIAMMATCH_MATCH_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, recipe, str(threads), str(repeats)],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ms(v: list[float]) -> str:
    return f"{v[0]:.0f} / {v[1]:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="checkout of the older commit")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--recipes", default="siammask_small")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for path in (args.before, args.after):
        if not (path / "matcher" / "siamese_matcher.py").is_file():
            raise SystemExit(f"{path} is not a checkout of this project")
    print(
        f"# {args.before} vs {args.after} — {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.threads} torch and match threads, medians of "
        f"{args.repeats}; ms as wall / CPU\n"
    )
    print(
        "| recipe | round | match(1) before | after | many(16) before | after | many after/before |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for recipe in args.recipes.split(","):
        for round_ in range(1, args.rounds + 1):
            b = _time(args.before, recipe, args.threads, args.repeats)
            a = _time(args.after, recipe, args.threads, args.repeats)
            ratio = a["many"][0] / b["many"][0]
            print(
                f"| {recipe} | {round_} | {_ms(b['one'])} | {_ms(a['one'])} | "
                f"{_ms(b['many'])} | {_ms(a['many'])} | {ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
