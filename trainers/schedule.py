"""Learning-rate schedules: warm-up, then log, exponential or cosine decay.

The learning rate is a pure function of the training progress (``epoch`` as a float, step
resolution), so resuming at any step reproduces it exactly with no scheduler state.

* warm-up: over ``warmup_epochs``, geometric from ``warmup_start_lr`` to ``base_lr``
  (PySOT's step warm-up, made continuous);
* ``log``: geometric from ``base_lr`` to ``end_lr`` over the remaining epochs (PySOT's
  ``np.logspace``), continuous;
* ``exp``: the same geometric decay applied per whole epoch (siamfc-pytorch's
  ``ExponentialLR``);
* ``cosine``: half a cosine from ``base_lr`` to ``end_lr`` (video_analyst).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate over training progress.

    Attributes:
        base_lr: learning rate after warm-up.
        end_lr: learning rate at the end of the last epoch.
        epochs: total epochs.
        warmup_epochs: warm-up length (0 for none).
        warmup_start_lr: learning rate at step 0 when warming up.
        kind: ``"log"``, ``"exp"`` or ``"cosine"``.
    """

    base_lr: float
    end_lr: float
    epochs: int
    warmup_epochs: int = 0
    warmup_start_lr: float = 0.0
    kind: str = "log"

    def __post_init__(self) -> None:
        if self.kind not in ("log", "exp", "cosine"):
            raise ValueError(f"unknown learning-rate schedule {self.kind!r}")
        if self.base_lr <= 0 or self.end_lr <= 0 or self.epochs <= 0:
            raise ValueError("learning rates and epochs must be positive")

    def __call__(self, progress: float) -> float:
        """Learning rate at ``progress`` epochs (``step / steps_per_epoch``)."""
        warm = min(self.warmup_epochs, self.epochs)
        if warm > 0 and progress < warm:
            start = self.warmup_start_lr if self.warmup_start_lr > 0 else self.base_lr
            return start * (self.base_lr / start) ** (progress / warm)
        span = self.epochs - warm
        if span <= 0:
            return self.base_lr
        t = (progress - warm) / span
        if self.kind == "exp":
            t = math.floor(progress - warm) / span
        t = min(max(t, 0.0), 1.0)
        if self.kind == "cosine":
            return self.end_lr + 0.5 * (self.base_lr - self.end_lr) * (1 + math.cos(math.pi * t))
        return self.base_lr * (self.end_lr / self.base_lr) ** t
