"""Caching a matcher's template features in the catalog database.

A product's :class:`matcher.ReferenceFeatures` (the head's template encoding of its
reference crop) depends on the matcher's recipe *and* weights, so cached features are
keyed by :func:`matcher_key`: the recipe name and a digest of the network's tensors. They
are serialised with ``torch.save`` into bytes and read back with ``weights_only=True``;
:class:`TemplateCache` keeps the most recently used ones in memory.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from index.backend import CatalogBackend
from index.products import STORED_LIMITS, box_from_json
from matcher.errors import ProductNotFoundError
from matcher.inference.geometric import ReferenceKeypoints
from matcher.inference.ncc import NccReference
from matcher.siamese_matcher import ReferenceFeatures, SiameseMatcher
from matcher.structures import Reference

logger = logging.getLogger(__name__)


def matcher_key(matcher: SiameseMatcher) -> str:
    """``"<recipe>:<digest>"`` identifying the matcher's template encoding (and its
    verifier's reference embedding, when it has a verification stage)."""
    digest = hashlib.sha256(matcher.name.encode())
    tensors = dict(matcher.net.state_dict())
    verifier = getattr(matcher, "verifier", None)
    if verifier is not None:
        tensors.update({f"verifier.{k}": v for k, v in verifier.state_dict().items()})
    for key, value in sorted(tensors.items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    geometric = getattr(matcher, "geometric", None)
    if geometric is not None:  # the cached keypoints depend on the stage's settings
        digest.update(repr(geometric.params).encode())
    ncc = getattr(matcher, "ncc", None)
    if ncc is not None:  # so does the template-matching pattern
        digest.update(repr(ncc.params).encode())
    return f"{matcher.name}:{digest.hexdigest()[:24]}"


def features_to_bytes(features: ReferenceFeatures) -> bytes:
    """Serialise template features (tensors moved to the CPU)."""
    payload = {
        "template": [t.detach().cpu() for t in features.template],
        "size_in_template": torch.tensor(features.size_in_template, dtype=torch.float64),
        "z_crop": torch.from_numpy(np.ascontiguousarray(features.z_crop)),
        "recipe": features.recipe,
        "reference_id": features.reference_id or "",
    }
    if features.embedding is not None:
        payload["embedding"] = torch.from_numpy(np.ascontiguousarray(features.embedding))
    if features.geometry is not None and features.colour is not None:
        payload["geometry_points"] = [torch.from_numpy(p) for p, _ in features.geometry.levels]
        payload["geometry_descriptors"] = [
            torch.from_numpy(np.ascontiguousarray(d)) for _, d in features.geometry.levels
        ]
        payload["geometry_corners"] = torch.from_numpy(features.geometry.corners)
        payload["colour"] = torch.from_numpy(features.colour)
    if features.ncc is not None:
        payload["ncc_pattern"] = torch.from_numpy(np.array(features.ncc.pattern))
        payload["ncc_crop"] = torch.from_numpy(np.array(features.ncc.crop))
        payload["ncc_flat"] = bool(features.ncc.flat)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def features_from_bytes(data: bytes, *, device: torch.device) -> ReferenceFeatures:
    """Inverse of :func:`features_to_bytes`, with the template on ``device``.

    Raises:
        pickle.UnpicklingError, RuntimeError, KeyError: the bytes are not such a payload
            (the catalog then recomputes the features).
    """
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    w, h = (float(v) for v in payload["size_in_template"].tolist())
    geometry = colour = None
    if "geometry_corners" in payload:
        levels = zip(payload["geometry_points"], payload["geometry_descriptors"], strict=True)
        geometry = ReferenceKeypoints(
            levels=tuple((p.numpy(), d.numpy()) for p, d in levels),
            corners=payload["geometry_corners"].numpy(),
        )
        colour = payload["colour"].numpy()
    ncc = None
    if "ncc_pattern" in payload:
        ncc = NccReference(
            pattern=payload["ncc_pattern"].numpy(),
            crop=payload["ncc_crop"].numpy(),
            flat=bool(payload["ncc_flat"]),
        )
    return ReferenceFeatures(
        template=[t.to(device) for t in payload["template"]],
        size_in_template=(w, h),
        z_crop=payload["z_crop"].numpy(),
        recipe=str(payload["recipe"]),
        reference_id=str(payload["reference_id"]) or None,
        embedding=payload["embedding"].numpy() if "embedding" in payload else None,
        geometry=geometry,
        colour=colour,
        ncc=ncc,
    )


class TemplateCache:
    """Template features per ``(matcher key, product seq)``: an in-memory LRU in front of
    the database's ``templates`` table.

    Args:
        store: the catalog database.
        size: entries kept in memory.
    """

    def __init__(self, store: CatalogBackend, *, size: int = 256) -> None:
        self.store = store
        self.size = size
        self._lru: OrderedDict[tuple[str, int], ReferenceFeatures] = OrderedDict()
        self._keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def key(self, matcher: SiameseMatcher) -> str:
        """:func:`matcher_key`, computed once per matcher object."""
        with self._lock:
            key = self._keys.get(matcher)
        if key is None:
            key = matcher_key(matcher)
            with self._lock:
                self._keys[matcher] = key
        return key

    def features(
        self, product_id: str, matcher: SiameseMatcher, *, persist: bool
    ) -> ReferenceFeatures:
        """The product's features for ``matcher``: from memory, from the database (if
        stored for this matcher), or computed from the stored reference image.

        Args:
            product_id: the product.
            matcher: the matcher.
            persist: store computed features in the database (the catalog's own matcher).

        Raises:
            ProductNotFoundError: unknown id.
        """
        found = self.features_many([product_id], matcher, persist=persist)
        if product_id not in found:
            raise ProductNotFoundError(f"no product {product_id!r} in the catalog")
        return found[product_id]

    def features_many(
        self, product_ids: Sequence[str], matcher: SiameseMatcher, *, persist: bool
    ) -> dict[str, ReferenceFeatures]:
        """:meth:`features` of several products with one database query for their seqs
        and, for those not in memory, one for their stored features.

        Returns:
            ``product_id -> features`` for the ids in the catalog (unknown ids left out).
        """
        key = self.key(matcher)
        seqs = self.store.template_keys(product_ids)
        out: dict[str, ReferenceFeatures] = {}
        with self._lock:
            for pid, (seq, _) in seqs.items():
                cached = self._lru.get((key, seq))
                if cached is not None:
                    self._lru.move_to_end((key, seq))
                    out[pid] = cached
        stored = [seq for pid, (seq, k) in seqs.items() if pid not in out and k == key]
        blobs = self.store.template_blobs(stored, key) if stored else {}
        for pid, (seq, _) in seqs.items():
            if pid not in out:
                feats = self._load(pid, seq, blobs.get(seq), matcher, key, persist)
                if feats is not None:
                    out[pid] = feats
        return out

    def _load(
        self,
        product_id: str,
        seq: int,
        blob: bytes | None,
        matcher: SiameseMatcher,
        key: str,
        persist: bool,
    ) -> ReferenceFeatures | None:
        """Features from ``blob``, else computed from the stored image (``None``: the
        product was deleted meanwhile); remembered in memory."""
        feats = None
        if blob is not None:
            try:
                feats = features_from_bytes(blob, device=matcher.device)
            except Exception as exc:  # a damaged cache entry is recomputed, never fatal
                logger.warning("recomputing template features of %r: %s", product_id, exc)
        if feats is None:
            try:
                row = self.store.get(product_id)
            except ProductNotFoundError:
                return None
            assert row.png is not None
            reference = Reference.from_image(
                row.png, box_from_json(row.box), id=product_id, limits=STORED_LIMITS
            )
            feats = matcher.encode_reference(reference)
            if persist:
                self.store.set_template(seq, key, features_to_bytes(feats))
        with self._lock:
            self._lru[(key, seq)] = feats
            while len(self._lru) > self.size:
                self._lru.popitem(last=False)
        return feats

    def clear(self) -> None:
        """Forget the in-memory entries."""
        with self._lock:
            self._lru.clear()
