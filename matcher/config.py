"""The recipe schema's root: :class:`Recipe`, the frozen dataclass ``configs/*.yaml`` load into.

A recipe names one model and everything needed to run and train it: ``model`` (architecture
and geometry, :mod:`matcher.model_config`, where the values derived from it are computed),
``inference`` (tracking hyper-parameters and the match-mode search,
:mod:`matcher.inference_config`) and ``train`` (schedule and data,
:mod:`matcher.train_config`). :mod:`matcher.recipes` loads and validates YAML into these
classes.

Only builders and entry points read recipes; modules receive plain arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from matcher.inference_config import InferenceConfig
from matcher.model_config import ModelConfig
from matcher.train_config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """One model recipe: what ``configs/<name>.yaml`` loads into.

    Attributes:
        name: recipe id, equal to the file name without ``.yaml``.
        family: builder family (``siamfc``, ``siamrpn`` ...).
        checkpoint_layout: key layout of the published weights (``pysot``,
            ``dasiamrpn``, ``siamfc_pytorch``, ``siammatch`` ...).
        description: one line for listings.
    """

    name: str
    family: str
    model: ModelConfig
    inference: InferenceConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint_layout: str = "siammatch"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain YAML-able data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
