"""Target assignment per family: what each family's loss compares the network against.

``build_targets(family, batch, geometry=..., params=...)`` dispatches on the recipe family
through the :data:`TARGETS` registry:

* ``siamfc`` — response labels (:func:`~trainers.targets.point.response_targets`);
* ``siamrpn`` — anchor labels and box deltas with capped random sampling
  (:func:`~trainers.targets.anchor.rpn_targets`);
* ``siammask`` — the anchor targets plus mask windows at positive cells
  (:func:`~trainers.targets.anchor.siammask_targets`);
* ``siamfcpp`` — point labels, centre-ness and box targets
  (:func:`~trainers.targets.point.densebox_targets`).

:func:`target_geometry` turns a recipe into the :class:`TargetGeometry` they all take.
"""

from __future__ import annotations

from trainers.targets import anchor, point  # noqa: F401  (registers the families)
from trainers.targets.geometry import TargetGeometry, anchor_boxes, target_geometry
from trainers.targets.mask import crop_mask_windows
from trainers.targets.registry import TARGETS, build_targets, check_batch
from trainers.targets.sampling import sample_capped

__all__ = [
    "TARGETS",
    "TargetGeometry",
    "anchor_boxes",
    "build_targets",
    "check_batch",
    "crop_mask_windows",
    "sample_capped",
    "target_geometry",
]
