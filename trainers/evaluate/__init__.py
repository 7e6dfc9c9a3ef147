"""Evaluation: pair localisation metrics (training validation), tracking success/precision,
and the COCO one-shot protocol (:mod:`trainers.evaluate.oneshot`)."""
