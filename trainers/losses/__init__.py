"""Training losses per family, the originals' (see each module):

* ``siamfc`` — class-balanced logistic loss (:mod:`trainers.losses.point`);
* ``siamrpn`` — cross-entropy + smooth L1 (:mod:`trainers.losses.anchor`);
* ``siammask`` — the RPN's plus mask BCE (:mod:`trainers.losses.anchor`);
* ``siamfcpp`` — focal + centre-ness BCE + IoU (:mod:`trainers.losses.point`);

and, outside the registry, the catalog embedder's symmetric InfoNCE
(:func:`~trainers.losses.contrastive.info_nce`, :mod:`trainers.losses.contrastive`).

``compute_loss(family, outputs, targets, geometry=..., params=..., weights=...)``
dispatches through :data:`LOSSES`; :func:`loss_weights` reads the weights from a recipe's
``train`` section.
"""

from __future__ import annotations

from trainers.losses import anchor, point  # noqa: F401  (registers the families)
from trainers.losses.contrastive import info_nce
from trainers.losses.registry import LOSSES, LossWeights, compute_loss, loss_weights

__all__ = ["LOSSES", "LossWeights", "compute_loss", "info_nce", "loss_weights"]
