"""The MS-COCO one-shot evaluation (the Siamese Mask R-CNN protocol) for every matcher.

The protocol: the dataset's categories are split into *unseen* and *seen* groups (the four
class splits of MS-COCO, or a split file for any COCO-format set). For every evaluated
image, every run and every category of a group present in the image, one query gives the
matcher a reference instance of that category drawn, with a seed, from **another** image;
every detection is labelled with the reference's category. pycocotools scores each run
and group (AP50 and AP, boxes and masks, per-category AP, recall and precision at an
operating threshold), and the report gives the mean and spread over runs. An added
*absent* pass asks for categories that are not in the image and counts the false
positives. Detections come from a matcher or from a COCO-results file
(``siammatch eval coco-oneshot``, :mod:`api.cli_eval`).

- :mod:`.data`: the annotation file, validated and indexed (:class:`~.data.OneShotDataset`);
- :mod:`.splits`: the class splits (the four COCO splits and split files);
- :mod:`.queries`: the reference rule and the seeded reference draw (the query plan);
- :mod:`.detections`: detections in memory and the detections file format;
- :mod:`.scoring`: pycocotools scoring of one run and one category group;
- :mod:`.report`: per-run scores aggregated over runs, as JSON and Markdown;
- :mod:`.protocol`: the entry points, running a matcher over a plan (``run_matcher``)
  and scoring detections into the report (``evaluate``).
"""
