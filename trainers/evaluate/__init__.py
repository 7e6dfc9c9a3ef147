"""Evaluation: pair localisation metrics (training validation), tracking success/precision,
and (later) the COCO one-shot protocol."""
