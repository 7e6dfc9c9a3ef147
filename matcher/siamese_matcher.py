"""The matcher a user holds: a Siamese network with its recipe, in match or tracking mode.

``encode_reference`` crops the reference like a tracker's template (the product box plus
context, padded with the reference's mean colour) and returns its head encoding, which
``match`` and ``match_many`` reuse; ``tracker()`` returns a fresh tracker of the family
that shares the same network. A recipe with ``inference.match.verifier`` adds a
verification stage to match mode (:mod:`matcher.inference.verify`); the steps that re-score
the Siamese search's candidates are in :mod:`matcher.inference.candidate_scoring`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matcher.config import Recipe
from matcher.crops import template_crop
from matcher.errors import ConfigError, InvalidArgumentError
from matcher.images import ImageLike, load_image
from matcher.inference.candidate_scoring import (
    fuse_evidence,
    pool_params,
    rescore_distractors,
    search_params,
)
from matcher.inference.decode import MatchDecoder, ReferenceGeometry
from matcher.inference.evidence import ScoredCandidate
from matcher.inference.fusion import Calibration, colour_histogram, resolve_calibration_path
from matcher.inference.geometric import GeometricVerifier, ReferenceKeypoints, SceneFeatures
from matcher.inference.match import Candidate, SearchParams, search_templates, to_instances
from matcher.inference.ncc import NccReference, NccScene, NccVerifier
from matcher.inference.parallel import submit, thread_map
from matcher.inference.siammask_masks import InstanceMasker
from matcher.inference.tracking import TRACKERS, Tracker, crops_to_tensor, to_model_order
from matcher.inference.verify import Verifier
from matcher.inference_config import MatchConfig
from matcher.interface import RecipeMatcher, resolve_match_limits
from matcher.model_config import NetGeometry
from matcher.structures import Instance, MatchResult, Reference

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ReferenceFeatures:
    """A reference encoded once for repeated matching.

    Attributes:
        template: the head's template encoding (tensors with batch 1, on the device).
        size_in_template: the product's ``(w, h)`` in template pixels.
        z_crop: the template crop, ``(Z, Z, 3)`` uint8 in the network's channel order.
        recipe: recipe name of the matcher that made it.
        reference_id: the reference's id.
        embedding: the verifier's ``(dim,)`` vector of the reference (``None`` for a
            matcher without a verification stage).
        geometry: the geometric stage's keypoints of the reference (``None`` without one).
        colour: the reference's colour histogram (``None`` without a geometric stage).
        ncc: the template-matching stage's pattern of the reference (``None`` without one).
    """

    template: list[torch.Tensor]
    size_in_template: tuple[float, float]
    z_crop: np.ndarray
    recipe: str
    reference_id: str | None = None
    embedding: np.ndarray | None = None
    geometry: ReferenceKeypoints | None = None
    colour: np.ndarray | None = None
    ncc: NccReference | None = None


class SiameseMatcher(RecipeMatcher):
    """Match mode and tracking mode of one Siamese recipe.

    Args:
        recipe: the resolved recipe.
        net: the network (its weights already loaded).
        decoder: the family's match-mode decoder.
        geometry: the network's crop and score-map geometry (``net_geometry(recipe.model)``).
        device: where the network runs.
        masker: predicts a mask for every match-mode instance (SiamMask), or ``None``.
        verifier: match mode's verification stage, or ``None``.

    Raises:
        ConfigError: the recipe's calibration was fitted on evidence the recipe does not
            gather (the ``template`` feature without ``inference.match.template``).
    """

    def __init__(
        self,
        *,
        recipe: Recipe,
        net: torch.nn.Module,
        decoder: MatchDecoder,
        geometry: NetGeometry,
        device: torch.device,
        masker: InstanceMasker | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.recipe = recipe
        self.device = device
        self.net = net.to(device).eval()
        self.decoder = decoder
        self.masker = masker
        self.verifier = verifier
        cfg = recipe.inference.match
        #: match mode's settings, read once: the stages below get them as parameters.
        self.match_cfg = cfg
        #: the settings a catalog search verifies its candidates with (``inference.catalog_search``)
        self.catalog_cfg = recipe.inference.catalog_search.applied_to(cfg)
        #: the search settings at the recipe's defaults (a call may change the limits).
        self.default_search = search_params(cfg)
        self.geometric = GeometricVerifier() if cfg.geometric else None
        self.ncc = NccVerifier() if cfg.geometric and cfg.template else None
        self.calibration = (
            Calibration.load(resolve_calibration_path(cfg.calibration))
            if cfg.geometric and cfg.calibration
            else None
        )
        needs_ncc = self.calibration is not None and "template" in self.calibration.features
        if needs_ncc and self.ncc is None:
            raise ConfigError(
                f"calibration {cfg.calibration!r} was fitted with the template-matching "
                "evidence: set inference.match.template: true, or name a calibration "
                "fitted without it"
            )
        self.geometry = geometry

    tracks = True

    @property
    def kind(self) -> str:
        """Always ``"siamese"``."""
        return "siamese"

    def encode_reference(self, reference: Reference) -> ReferenceFeatures:
        """Crop and encode a reference once, for any number of ``match`` calls."""
        if not isinstance(reference, Reference):
            raise InvalidArgumentError(
                f"expected a matcher.Reference, got {type(reference).__name__}; build one "
                "with Reference.from_image(image, box)"
            )
        image = to_model_order(reference.image, self.recipe.model.input_format)
        crop, scale = template_crop(
            image,
            reference.box,
            exemplar_size=self.geometry.exemplar_size,
            context_amount=self.geometry.context_amount,
        )
        with torch.no_grad():
            template = self.net.encode_template(crops_to_tensor(crop, self.device))
        w, h = reference.size
        embedding = None
        if self.verifier is not None:
            embedding = self.verifier.embed_reference(reference.image, reference.box)
        geometry = colour = None
        if self.geometric is not None:
            geometry = self.geometric.encode_reference(reference)
            colour = colour_histogram(reference.image, reference.box)
        ncc = self.ncc.encode_reference(reference) if self.ncc is not None else None
        return ReferenceFeatures(
            template=template,
            size_in_template=(w * scale, h * scale),
            z_crop=crop,
            recipe=self.name,
            reference_id=reference.id,
            embedding=embedding,
            geometry=geometry,
            colour=colour,
            ncc=ncc,
        )

    def _features(self, ref: Reference | ReferenceFeatures) -> ReferenceFeatures:
        if isinstance(ref, ReferenceFeatures):
            if ref.recipe != self.name:
                raise InvalidArgumentError(
                    f"reference was encoded by {ref.recipe!r}, not by this {self.name!r} matcher"
                )
            if self.verifier is not None and ref.embedding is None:
                raise InvalidArgumentError(
                    "reference features carry no verifier embedding; encode the reference "
                    "with this matcher's encode_reference"
                )
            if self.geometric is not None and (ref.geometry is None or ref.colour is None):
                raise InvalidArgumentError(
                    "reference features carry no geometric features; encode the reference "
                    "with this matcher's encode_reference"
                )
            if self.ncc is not None and ref.ncc is None:
                raise InvalidArgumentError(
                    "reference features carry no template-matching pattern; encode the "
                    "reference with this matcher's encode_reference"
                )
            return ref
        return self.encode_reference(ref)

    def match_many(
        self,
        references: Sequence[Reference | ReferenceFeatures],
        scene: ImageLike,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
        distractor_aware: bool = False,
        catalog_search: bool = False,
    ) -> list[MatchResult]:
        """:meth:`match` for several references with one pass of the scene's backbone; the
        per-reference stages run on :mod:`matcher.inference.parallel`'s threads.

        Args:
            references: :class:`Reference` objects or :meth:`encode_reference` outputs.
            scene: any image :func:`matcher.images.load_image` reads.
            max_instances / score_threshold: as for :meth:`Matcher.match`.
            distractor_aware: also compare candidates with each other and down-weight those
                that look more like another candidate than like the reference (shelves of
                near-identical look-alikes); costs one crop pass per candidate.
            catalog_search: verify with the recipe's ``inference.catalog_search`` settings
                (fewer checks per reference; :func:`index.search.search_scene`).

        Returns:
            One :class:`MatchResult` per reference, in order.
        """
        params = self._search_params(max_instances, score_threshold)
        if not references:
            return []
        feats = [self._features(r) for r in references]
        image = load_image(scene)
        scene_model = to_model_order(image, self.recipe.model.input_format)
        # the scene's keypoints and template proposals do not need the search: made beside it
        cfg = self.catalog_cfg if catalog_search else self.match_cfg
        geo, ncc, limit = self.geometric, self.ncc, cfg.template_proposals
        jobs = [submit(geo.prepare_scene, image) if geo else None]
        jobs.append(ncc.start(image, [f.ncc for f in feats], limit) if ncc else None)
        results = self._search(feats, scene_model, params, distractor_aware, cfg)
        prepared = [job.result() if job is not None else None for job in jobs]
        scene_parts = (image, scene_model, *prepared)
        verifier = self.verifier.shared_scene(image) if self.verifier is not None else None
        shared = (scene_parts, params, cfg, distractor_aware, verifier)
        return thread_map(
            lambda job: self._finish_one(*job, *shared), zip(feats, results, strict=True)
        )

    def _finish_one(
        self,
        f: ReferenceFeatures,
        cands: list[Candidate],
        scene_parts: tuple[np.ndarray, np.ndarray, SceneFeatures | None, NccScene | None],
        params: SearchParams,
        cfg: MatchConfig,
        distractor_aware: bool,
        verifier: Verifier | None,
    ) -> MatchResult:
        """One reference's re-scoring stages, limits and masks after the shared search
        (``verifier``: this matcher's, bound to the scene; any thread)."""
        image, scene_model, scene_geometry, scene_ncc = scene_parts
        if distractor_aware:
            cands = rescore_distractors(
                self.net,
                f.template,
                scene_model,
                cands,
                geometry=self.geometry,
                weight=cfg.distractor_weight,
                device=self.device,
            )
        if self.geometric is not None:
            scored = self._fuse(f, image, scene_geometry, scene_ncc, cands, verifier, cfg)
            cands = [Candidate(box=c.box, score=c.probability) for c in scored]
        elif verifier is not None:
            cands = verifier.rescore(f.embedding, image, cands)
        cands = [c for c in cands if c.score >= params.score_threshold]
        cands = cands[: params.max_instances]
        instances = to_instances(cands)
        if self.masker is not None and instances:
            masks = self.masker(
                self.net, f.template, scene_model, [c.box for c in cands], self.device
            )
            instances = tuple(
                Instance(box=inst.box, score=inst.score, mask=m.mask, polygon=m.polygon)
                for inst, m in zip(instances, masks, strict=True)
            )
        return MatchResult(
            instances=instances,
            scene_size=(image.shape[0], image.shape[1]),
            reference_id=f.reference_id,
        )

    def _search(
        self,
        feats: Sequence[ReferenceFeatures],
        scene_model: np.ndarray,
        params: SearchParams,
        distractor_aware: bool,
        cfg: MatchConfig,
    ) -> list[list[Candidate]]:
        """The Siamese search's candidates per reference, from the wider pool the re-scoring
        stages look at (:func:`~matcher.inference.candidate_scoring.pool_params`)."""
        search_params = pool_params(
            params,
            cfg,
            distractor_aware=distractor_aware,
            verified=self.verifier is not None,
            geometric=self.geometric is not None,
        )
        return search_templates(
            self.net,
            [f.template for f in feats],
            [ReferenceGeometry(*f.size_in_template) for f in feats],
            scene_model,
            geometry=self.geometry,
            decoder=self.decoder,
            params=search_params,
            device=self.device,
        )

    def _fuse(
        self,
        f: ReferenceFeatures,
        image: np.ndarray,
        scene_geometry: SceneFeatures | None,
        scene_ncc: NccScene | None,
        cands: list[Candidate],
        verifier: Verifier | None,
        cfg: MatchConfig,
    ) -> list[ScoredCandidate]:
        """:func:`~matcher.inference.candidate_scoring.fuse_evidence` with this matcher's
        stages and the reference's features."""
        return fuse_evidence(
            image,
            cands,
            embedding=f.embedding,
            colour=f.colour,
            reference_geometry=f.geometry,
            scene_geometry=scene_geometry,
            reference_ncc=f.ncc,
            scene_ncc=scene_ncc,
            verifier=verifier,
            geometric=self.geometric,
            ncc=self.ncc,
            calibration=self.calibration,
            cfg=cfg,
        )

    def scored_candidates(
        self, reference: Reference | ReferenceFeatures, scene: ImageLike
    ) -> list[ScoredCandidate]:
        """Every fused candidate of one reference with its evidence, most probable first,
        before any score threshold (for fitting and inspecting the calibration).

        Raises:
            InvalidArgumentError: the recipe has no geometric stage.
        """
        if self.geometric is None:
            raise InvalidArgumentError(
                f"recipe {self.name!r} has no geometric stage (inference.match.geometric)"
            )
        f = self._features(reference)
        image = load_image(scene)
        scene_model = to_model_order(image, self.recipe.model.input_format)
        params, cfg = self._search_params(None, 0.0), self.match_cfg
        cands = self._search([f], scene_model, params, False, cfg)[0]
        scene_ncc = self.ncc.prepare_scene(image) if self.ncc is not None else None
        scene_geometry = self.geometric.prepare_scene(image)
        return self._fuse(f, image, scene_geometry, scene_ncc, cands, self.verifier, cfg)

    def _search_params(
        self, max_instances: int | None, score_threshold: float | None
    ) -> SearchParams:
        defaults = self.default_search
        max_instances, score_threshold = resolve_match_limits(
            max_instances,
            score_threshold,
            default_max_instances=defaults.max_instances,
            default_threshold=defaults.score_threshold,
        )
        return dataclasses.replace(
            defaults, score_threshold=score_threshold, max_instances=int(max_instances)
        )

    # -- tracking mode -------------------------------------------------------------------

    def tracker(self) -> Tracker:
        """A new tracker of this recipe's family sharing the network."""
        factory = TRACKERS.get(self.recipe.inference.track.tracker)
        return factory(
            net=self.net,
            geometry=self.geometry,
            model_cfg=self.recipe.model,
            track_cfg=self.recipe.inference.track,
            device=self.device,
        )
