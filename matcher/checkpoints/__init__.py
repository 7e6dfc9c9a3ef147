"""Checkpoints: published tracker weights as distributed, and this project's own files.

* :mod:`matcher.checkpoints.io` — reading a weights file safely, fitting its state dict to
  a model strictly, loading it, and writing siammatch checkpoints;
* :mod:`matcher.checkpoints.layouts` — the registered layouts: key maps from each upstream
  project's module names to ours;
* :mod:`matcher.checkpoints.origin` — guessing which published model a state dict is, for
  the messages of a refused file;
* :mod:`matcher.checkpoints.shipped` — the trained weights shipped in ``weights/``.
"""
