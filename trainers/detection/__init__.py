"""Training the Siamese Mask R-CNN: detection episodes from COCO-format sets, batches of
variable-size scenes, the training task registered for family ``siam_mask_rcnn``, and
held-out AP50.

Modules: ``episodes`` (sources and the dataset), ``build`` (the one function reading the
recipe), ``targets`` (collate, device moves, :func:`~trainers.detection.targets.check_targets`),
``evaluate`` (AP50 via pycocotools) and ``task`` (the
:class:`~trainers.task_registry.TrainingTask`).
"""
