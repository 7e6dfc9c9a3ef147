"""The tracking benchmark toolkit: OTB, UAV123, LaSOT, GOT-10k, VOT and VOT-LT.

Results-compatible with PySOT's toolkit (``toolkit/`` in STVIR/pysot): the same dataset
folders (official layouts, or PySOT's dataset JSON), the same result-file layout, and the
same scores to 1e-6.

- :mod:`.datasets`, :mod:`.layouts`: benchmarks, sequences, and reading a benchmark folder;
- :mod:`.runner`: running a tracker over a benchmark (OPE, VOT supervised, VOT-LT);
- :mod:`.results`: result files (PySOT's layout and formats);
- :mod:`.region`, :mod:`.raster`: VOT region overlap, rasterised as the VOT library does;
- :mod:`.ope`, :mod:`.vot`, :mod:`.longterm`: the scores of each protocol;
- :mod:`.scoring`, :mod:`.report`, :mod:`.plots`: a benchmark's report, its Markdown and
  JSON forms, and its plots.

The command line is ``siammatch track-benchmark`` and ``siammatch eval tracking``
(:mod:`api.cli_track_benchmark`, :mod:`api.cli_eval_tracking`); synthetic sequences in any
of the layouts come from ``siammatch synth --video`` (:mod:`trainers.data.synth.video`).
"""
