"""Inference: crops, anchors, per-family decoding, trackers and the match-mode search."""
