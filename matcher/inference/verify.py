"""The verification stage of match mode: is this candidate box the reference's product?

A small Siamese network trained end to end on synthetic scenes learns *where objects are*
long before it learns *which* object is the reference: on a shelf of look-alike packs its
best-scoring box is often a neighbour's. Two-stage Siamese detectors (Siam R-CNN's
re-detection head is the best-known) answer this with a second look at each candidate. Here
the second look is an embedder (:mod:`matcher.embedder`) trained with InfoNCE to map a
product's catalog photo and its views in scenes to nearby unit vectors:

1. the Siamese search proposes its best boxes (``verifier_candidates`` of them, no score
   floor);
2. each box's square (the box's longer side times ``1 + context``) is cut from the scene
   and embedded, like the reference's square once per reference;
3. the cosine similarity ``c`` of the two vectors, floored at 0, becomes the candidate's
   appearance score, combined with the Siamese score ``s`` as
   ``max(c, 0) ** w * s ** (1 - w)``; candidates are re-sorted by it.

The Siamese stage keeps what the embedder cannot give (boxes fitted at any scale, masks);
the embedder decides identity. The score stays in ``[0, 1]`` and the recipe's
``score_threshold`` applies to it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from matcher.checkpoints.shipped import is_shipped_name, shipped_weights
from matcher.crops import square_bounds, square_crop
from matcher.embedder import Embedder, load_embedder
from matcher.errors import CheckpointError
from matcher.inference.match import Candidate


def resolve_verifier_path(name_or_path: str) -> Path:
    """The embedder file a recipe's ``inference.match.verifier`` names.

    A bare name (no path separator, no suffix) is a file shipped under ``weights/``;
    anything else is a path.

    Raises:
        CheckpointError: the file does not exist.
    """
    text = str(name_or_path)
    bare = is_shipped_name(text)
    path = shipped_weights(text) if bare else Path(text).expanduser()
    if path is None or not path.is_file():
        where = f"weights/{text}.pth is not shipped" if bare else f"{text} does not exist"
        raise CheckpointError(
            f"verifier {text!r}: {where} (set inference.match.verifier to an embedder "
            "checkpoint, or to an empty string to match without verification)"
        )
    return path


@dataclass
class Verifier:
    """Scores candidate boxes by their appearance similarity to the reference.

    Args:
        embedder: the trained embedder (eval mode).
        weight: share ``w`` of the similarity in the final score, in ``[0, 1]``.
        context: context of the embedded squares.
        source: where the embedder came from (for messages and cache keys).
    """

    embedder: Embedder
    weight: float
    context: float
    source: str = ""

    @classmethod
    def load(
        cls,
        name_or_path: str,
        *,
        weight: float,
        context: float,
        device: torch.device | str = "cpu",
    ) -> Verifier:
        """Load the embedder a recipe names (see :func:`resolve_verifier_path`).

        Raises:
            CheckpointError: missing file, or not an embedder checkpoint.
        """
        path = resolve_verifier_path(name_or_path)
        return cls(
            embedder=load_embedder(path, device=device),
            weight=float(weight),
            context=float(context),
            source=str(path),
        )

    def embed_reference(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """``(dim,)`` float32 unit vector of the reference's square (``image`` RGB)."""
        return self.embedder.embed([square_crop(image, box, self.context)])[0]

    def similarities(
        self, reference: np.ndarray, scene: np.ndarray, boxes: Sequence[Sequence[float]]
    ) -> np.ndarray:
        """Cosine similarity of each box's square in ``scene`` (RGB) to ``reference``."""
        if not len(boxes):
            return np.zeros(0, np.float32)
        return self._vectors(scene, boxes) @ reference.astype(np.float32)

    def shared_scene(self, scene: np.ndarray) -> SceneVerifier:
        """This verifier bound to one scene: its :meth:`similarities` on ``scene`` embed
        each distinct square once, whichever reference and whichever thread asks
        (``match_many``'s references share one scene; a square's vector does not depend on
        the reference)."""
        own = {f.name: getattr(self, f.name) for f in fields(Verifier)}
        return SceneVerifier(**own, scene=scene)

    def _vectors(self, scene: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        return self.embedder.embed([square_crop(scene, b, self.context) for b in boxes])

    def rescore(
        self, reference: np.ndarray, scene: np.ndarray, cands: Sequence[Candidate]
    ) -> list[Candidate]:
        """The candidates with verified scores, best first (stable for ties)."""
        if not cands:
            return []
        sim = self.similarities(reference, scene, [c.box for c in cands])
        siamese = np.clip(np.array([c.score for c in cands], np.float64), 0.0, 1.0)
        scores = combine_scores(sim, siamese, self.weight)
        order = np.argsort(-scores, kind="stable")
        return [Candidate(box=cands[i].box, score=float(scores[i])) for i in order]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The embedder's tensors (for cache keys of features that depend on them)."""
        return self.embedder.state_dict()


@dataclass
class SceneVerifier(Verifier):
    """A :class:`Verifier` bound to one scene (:meth:`Verifier.shared_scene`).

    Each distinct square of ``scene`` (same pixel bounds, :func:`~matcher.crops.square_bounds`)
    is embedded once, by the first call that needs it; a call from another thread that needs
    it meanwhile waits for that vector rather than embedding it again. Other scenes are
    embedded as by a plain verifier.
    """

    scene: np.ndarray | None = None
    _squares: dict[tuple, Future] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _vectors(self, scene: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        if scene is not self.scene:
            return super()._vectors(scene, boxes)
        keys = [square_bounds(scene.shape[:2], b, self.context) for b in boxes]
        with self._lock:
            mine = [k for k in dict.fromkeys(keys) if k not in self._squares]
            for key in mine:
                self._squares[key] = Future()
            wanted = [self._squares[k] for k in keys]
        if mine:
            try:
                crops = [scene[t:b, left:r] for left, t, r, b in mine]
                vectors = self.embedder.embed(crops)
            except BaseException as error:
                for key in mine:  # waiting threads see the failure too
                    self._squares[key].set_exception(error)
                raise
            for key, vector in zip(mine, vectors, strict=True):
                self._squares[key].set_result(vector)
        return np.stack([f.result() for f in wanted])


def combine_scores(similarity: np.ndarray, siamese: np.ndarray, weight: float) -> np.ndarray:
    """``max(similarity, 0) ** weight * siamese ** (1 - weight)`` elementwise (float64).

    ``weight = 1`` is the similarity alone, ``weight = 0`` the Siamese score alone.
    """
    sim = np.clip(np.asarray(similarity, np.float64), 0.0, 1.0)
    sia = np.clip(np.asarray(siamese, np.float64), 0.0, 1.0)
    return sim**weight * sia ** (1.0 - weight)
