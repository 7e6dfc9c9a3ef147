"""Build the README's real-photo gallery: the default matcher on the test split of the
real-photo set (``siammatch eval pairs --set real``), successes and failures alike.

Which trials are shown is fixed in advance, not chosen by their outcome: for every category
of the test split, the ``--per-category`` trials with the lowest ids. Each panel is the
reference beside the scene, with what the service would return (instances scoring at least
the matcher's threshold: boxes, masks, scores) and the true boxes as thin white lines; its
caption says whether the trial succeeded (top instance at or above the threshold, IoU >=
0.5 with a true box), was missed, or — in a scene without the product — was a false
positive. Writes ``OUT/real_test.jpg`` and ``OUT/real_test.json`` (the trials shown and
their outcome).

Usage (from the repository root)::

    python docs/make_real_gallery.py                           # the default matcher
    python docs/make_real_gallery.py --recipe baseline_sift --out var/gallery-sift
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "docs"):  # run as a script from anywhere
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from make_gallery import PANEL_GAP, beside, load_matcher, matcher_arguments, save, strip  # noqa: E402

from api.render import draw_instances  # noqa: E402

logger = logging.getLogger("make_real_gallery")

PANEL_HEIGHT = 220
COLUMNS = 4


def pick_trials(trials, per_category: int):
    """The ``per_category`` lowest-id trials of every category, categories in the order the
    set lists them."""
    by_category: dict[str, list] = {}
    for trial in sorted(trials, key=lambda t: t.id):
        chosen = by_category.setdefault(trial.category, [])
        if len(chosen) < per_category:
            chosen.append(trial)
    order = list(dict.fromkeys(t.category for t in trials))
    return [t for category in order for t in by_category[category]]


def verdict(outcome, threshold: float) -> str:
    """The caption's outcome: success, miss (and why) or false positive."""
    top = f"top p={outcome.top_score:.2f}"
    if not outcome.present:
        if outcome.found:
            return f"FALSE POSITIVE ({top})"
        return f"correctly nothing >= {threshold:.2f} ({top})"
    if outcome.success:
        return f"found, p={outcome.top_score:.2f}, IoU {outcome.iou:.2f}"
    if outcome.found:
        return f"MISSED: wrong box p={outcome.top_score:.2f} (IoU {outcome.iou:.2f})"
    return f"MISSED: nothing >= {threshold:.2f} ({top}, IoU {outcome.iou:.2f})"


def panel(trial, reference: np.ndarray, scene: np.ndarray, result, outcome, threshold: float):
    """Reference (left) beside the annotated scene (right), under a caption."""
    kept = tuple(inst for inst in result.instances if inst.score >= threshold)
    drawn = draw_instances(scene, kept)
    for x0, y0, x1, y1 in np.round(trial.gt_boxes).astype(int):
        cv2.rectangle(drawn, (x0, y0), (x1, y1), (255, 255, 255), 1, cv2.LINE_AA)
    caption = f"{trial.category} #{trial.id}: {verdict(outcome, threshold)}"
    return beside(reference, drawn, caption, ref_width=160)


def grid(panels: list[np.ndarray], columns: int = COLUMNS) -> np.ndarray:
    """Rows of ``columns`` panels (one height), left-aligned on a white page."""
    rows = [strip(panels[i : i + columns], PANEL_HEIGHT) for i in range(0, len(panels), columns)]
    width = max(r.shape[1] for r in rows)
    page = []
    for row in rows:
        pad = np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)
        page += [np.concatenate([row, pad], axis=1), np.full((PANEL_GAP, width, 3), 255, np.uint8)]
    return np.concatenate(page[:-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    matcher_arguments(parser)
    parser.add_argument("--seed", type=int, default=2026, help="seed of the real-photo set")
    parser.add_argument("--per-category", type=int, default=2, help="trials per category")
    parser.add_argument("--out", default=str(ROOT / "docs" / "gallery"), help="output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from api.cli_eval_pairs import DEFAULT_DATA_ROOT
    from matcher.images import load_image
    from trainers.evaluate import real_protocol as protocol
    from trainers.evaluate.real_set import build_real_set

    root = DEFAULT_DATA_ROOT / f"real-seed{args.seed}"
    build_real_set(root, seed=args.seed, progress=True)
    trials = pick_trials(
        protocol.real_trials(protocol.load_real_document(root), "test"), args.per_category
    )
    references = protocol.load_references(trials, root)
    m = load_matcher(args)
    threshold = m.score_threshold
    panels, records = [], []
    for trial in trials:
        scene = load_image(root / trial.file_name)
        result = m.match(
            references[trial.reference_id],
            scene,
            max_instances=protocol.MAX_INSTANCES,
            score_threshold=0.0,
        )
        answer = protocol.answer_from_result(trial, result, latency_ms=0.0)
        outcome = protocol.score_answer(trial, answer, threshold=threshold)
        reference = references[trial.reference_id].image
        panels.append(panel(trial, reference, scene, result, outcome, threshold))
        record = outcome.to_record()
        record.pop("found")
        record["outcome"] = verdict(outcome, threshold)
        records.append(record)
        logger.info("%s #%d: %s", trial.category, trial.id, record["outcome"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # JPEG: a page of 24 photos is several MB as PNG.
    save(out / "real_test.jpg", grid(panels), (cv2.IMWRITE_JPEG_QUALITY, 88))
    summary = {"matcher": m.name, "threshold": threshold, "seed": args.seed, "trials": records}
    (out / "real_test.json").write_text(json.dumps(summary, indent=1) + "\n")
    logger.info("real-photo gallery written to %s/real_test.jpg", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
