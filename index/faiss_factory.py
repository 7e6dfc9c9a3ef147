"""FAISS factory strings: checking them, their training sizes and their search parameters.

The catalog builds its index with ``faiss.index_factory(dim, factory, METRIC_INNER_PRODUCT)``
(:class:`~index.faiss_index.VectorIndex`). This module holds what depends only on the
factory string and the faiss index it builds:

* **Checks.** :func:`check_factory` refuses strings faiss cannot build, or that carry their
  own id map or a refinement; :func:`check_search_params` refuses parameters the index
  does not have.
* **Training.** Factories that need training (``IVF…``, ``PQ…``) are trained only once
  :func:`train_size` vectors are stored (faiss's own guideline of 39 points per centroid).
* **Default search parameters** that reach recall@10 >= 0.95 on clustered data
  (:func:`configure_search`): ``nprobe = clamp(nlist / 32, 32, nlist)``, HNSW
  ``efSearch = 128`` (and ``efConstruction = 80`` for the graph it builds); overridden by
  a ``faiss.ParameterSpace`` string such as ``"nprobe=64,efSearch=128"``.
* **Introspection** shared by the index and its files: :func:`extract_ivf` and
  :func:`is_hnsw`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import faiss

from matcher.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

#: Points per centroid before an IVF/PQ index is trained (faiss warns below 39).
TRAIN_POINTS_PER_CENTROID = 39
#: Default HNSW ``efSearch``.
DEFAULT_EF_SEARCH = 128
#: HNSW ``efConstruction`` (faiss's default, 40, builds graphs too poor for clustered
#: catalogs of a million vectors: recall@10 0.69 at efSearch 64 in benchmarks/catalog.py).
DEFAULT_EF_CONSTRUCTION = 80


def check_factory(factory: str, dim: int) -> str:
    """Return ``factory`` if faiss can build it for ``dim``-d inner-product vectors.

    Raises:
        InvalidArgumentError: not a string faiss understands, or one that adds its own id
            map (``IDMap…``; the catalog adds one).
    """
    if not isinstance(factory, str) or not factory.strip():
        raise InvalidArgumentError(f"index factory must be a non-empty string, got {factory!r}")
    if re.match(r"\s*IDMap", factory):
        raise InvalidArgumentError(f"index factory {factory!r}: leave out IDMap (it is added)")
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise InvalidArgumentError(f"invalid index factory {factory!r}: {first}") from None
    if isinstance(faiss.downcast_index(index), faiss.IndexRefine):
        raise InvalidArgumentError(
            f"index factory {factory!r}: refinement (…,RFlat) cannot take ids or remove "
            "vectors; use a plain IVF/PQ index"
        )
    return factory


def check_search_params(factory: str, dim: int, search_params: str | None) -> None:
    """Check that ``search_params`` apply to ``factory``'s index.

    Raises:
        InvalidArgumentError: a parameter the index does not have, or a bad value.
    """
    if search_params:
        configure_search(
            faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT), search_params
        )


def train_size(factory: str, dim: int, *, minimum: bool = False) -> int:
    """Vectors needed before ``factory`` is trained (0 if it needs no training).

    Args:
        factory: factory string.
        dim: vector length.
        minimum: the least faiss accepts (one per centroid) rather than the recommended
            :data:`TRAIN_POINTS_PER_CENTROID` per centroid.
    """
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if index.is_trained:
        return 0
    centroids = 1
    ivf = extract_ivf(index)
    if ivf is not None:
        centroids = max(centroids, int(ivf.nlist))
    for part in (index, ivf):
        pq = getattr(faiss.downcast_index(part), "pq", None) if part is not None else None
        if pq is not None:
            centroids = max(centroids, int(pq.ksub))
    return centroids if minimum else TRAIN_POINTS_PER_CENTROID * centroids


def extract_ivf(index: Any) -> Any:
    """The IVF index inside ``index``, or ``None`` when it has none."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def is_hnsw(index: Any) -> bool:
    """Whether ``index`` is an HNSW index."""
    return isinstance(faiss.downcast_index(index), faiss.IndexHNSW)


def configure_search(index: Any, search_params: str | None) -> None:
    """Set the default search parameters on ``index``, then apply ``search_params``.

    Raises:
        InvalidArgumentError: a parameter the index does not have, or a bad value.
    """
    ivf = extract_ivf(index)
    if ivf is not None:
        nlist = int(ivf.nlist)
        ivf.nprobe = min(nlist, max(32, nlist // 32))
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = DEFAULT_EF_SEARCH
        inner.hnsw.efConstruction = DEFAULT_EF_CONSTRUCTION
    if search_params:
        try:
            faiss.ParameterSpace().set_index_parameters(index, search_params)
        except RuntimeError as exc:
            raise InvalidArgumentError(
                f"invalid search parameters {search_params!r}: {exc}"
            ) from None
