"""The catalog's FAISS index: built from a factory string, id-mapped, persisted atomically.

:class:`VectorIndex` holds ``faiss.index_factory(dim, factory, METRIC_INNER_PRODUCT)`` —
scores are cosine similarities of unit vectors — with the catalog's ids (product seqs):
IVF indexes store ids natively; the others are wrapped in an ``IndexIDMap2``. (An id map
around an IVF index would be wrong: IVF removals do not renumber the entries the way the
id map's compaction assumes.) Around it comes what the catalog needs:

* **Training.** Factories that need training (``IVF…``, ``PQ…``) are trained only once
  :func:`~index.faiss_factory.train_size` vectors are stored (faiss's own guideline of 39
  points per centroid). Until then the index is *exact*: an id-mapped ``IndexFlatIP`` over
  the stored vectors, so search results are exact while the catalog is small; the catalog
  swaps in the trained index when enough vectors exist.
* **Deletion.** Indexes that cannot remove vectors (HNSW) keep deleted ids as tombstones,
  excluded at search time with an ``IDSelector``; the catalog rebuilds them when the
  tombstones pile up.
* **Default search parameters** (:func:`~index.faiss_factory.configure_search`) that reach
  recall@10 >= 0.95 on clustered data, overridden by a ``faiss.ParameterSpace`` string
  such as ``"nprobe=64,efSearch=128"``.
* **Files.** :meth:`VectorIndex.save` writes one file atomically, in the format of
  :mod:`index.index_file`, so a reader sees the old file or the new one, never a mix.
* **GPU.** When faiss sees GPUs, searches run on a GPU copy (``index_cpu_to_all_gpus``),
  re-made after mutations; the CPU index stays the one that is mutated and saved.

Naming follows faiss: ``xb`` database vectors, ``xq`` queries, ``k``, ``D`` scores and
``I`` ids (``-1`` where fewer than ``k`` results exist).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.faiss_factory import configure_search, extract_ivf, is_hnsw
from index.index_file import IndexHeader, read_index_file, write_index_file

logger = logging.getLogger(__name__)


class VectorIndex:
    """An id-mapped faiss index with tombstones, training state and a search device.

    Build with :meth:`empty` or :meth:`load`; not thread-safe (the catalog locks).

    Args:
        index: an IVF index (ids stored natively) or an ``IndexIDMap2``.
        factory: the catalog's factory string.
        exact: ``index`` is the exact fallback of an untrained factory.
        search_params: ``faiss.ParameterSpace`` overrides, e.g. ``"nprobe=16"``.
    """

    def __init__(
        self,
        index: faiss.Index,
        *,
        factory: str,
        exact: bool,
        search_params: str | None = None,
    ) -> None:
        self.index = index
        self.factory = factory
        self.exact = exact
        self.search_params = search_params
        self.tombstones: set[int] = set()
        self._gpu: Any = None
        self._gpu_failed = False
        configure_search(self.inner, None if exact else search_params)

    @property
    def inner(self) -> Any:
        """The factory's index (inside the id map, if any)."""
        if isinstance(self.index, faiss.IndexIDMap2):
            return faiss.downcast_index(self.index.index)
        return self.index

    @property
    def dim(self) -> int:
        """Vector length."""
        return int(self.index.d)

    @property
    def removes(self) -> bool:
        """Whether deletions are real (``False``: they become tombstones)."""
        return not is_hnsw(self.inner)

    @classmethod
    def empty(
        cls, factory: str, dim: int, *, trained: bool = False, search_params: str | None = None
    ) -> VectorIndex:
        """A new empty index: the factory's if it needs no training, else the exact
        fallback (or, with ``trained``, the untrained factory index for :meth:`train`)."""
        inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        exact = not inner.is_trained and not trained
        if exact:
            inner = faiss.IndexFlatIP(dim)
        native = extract_ivf(inner) is not None and isinstance(
            faiss.downcast_index(inner), faiss.IndexIVF | faiss.IndexPreTransform
        )
        index = inner if native else faiss.IndexIDMap2(inner)
        return cls(index, factory=factory, exact=exact, search_params=search_params)

    def train(self, xt: np.ndarray) -> None:
        """Train the (empty, untrained) factory index on ``xt`` ``(n, dim)`` float32."""
        assert self.index.ntotal == 0 and not self.exact
        self.index.train(np.ascontiguousarray(xt, dtype=np.float32))
        configure_search(self.inner, self.search_params)  # the factory index replaced the fallback

    # -- contents --------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    def ids(self) -> np.ndarray:
        """Live ids, ``(n,)`` int64."""
        if isinstance(self.index, faiss.IndexIDMap2):
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        else:
            ids = _ivf_ids(extract_ivf(self.index))
        if self.tombstones:
            ids = ids[~np.isin(ids, np.fromiter(self.tombstones, np.int64))]
        return ids

    def add(self, ids: np.ndarray, xb: np.ndarray) -> None:
        """Add vectors ``xb`` ``(n, dim)`` float32 under ``ids`` ``(n,)`` int64."""
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(xb, dtype=np.float32), np.ascontiguousarray(ids, np.int64)
            )
            self._gpu = None

    def remove(self, ids: np.ndarray) -> None:
        """Remove ``ids`` (unknown ids are ignored); tombstones where faiss cannot."""
        ids = np.ascontiguousarray(ids, np.int64)
        if not len(ids):
            return
        if self.removes:
            self.index.remove_ids(ids)
        else:
            present = set(faiss.vector_to_array(self.index.id_map).tolist())
            self.tombstones.update(int(i) for i in ids if int(i) in present)
        self._gpu = None

    # -- search ----------------------------------------------------------------------------

    def search(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product.

        Args:
            xq: ``(nq, dim)`` float32.
            k: results per query.

        Returns:
            ``D`` ``(nq, k)`` float32 scores, ``I`` ``(nq, k)`` int64 ids (``-1`` padding).
        """
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        index = self._search_index()
        if not self.tombstones:
            return index.search(xq, k)
        banned = np.fromiter(self.tombstones, np.int64)
        selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(banned))
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(int(self.inner.hnsw.efSearch), k)
        params.sel = selector
        D, I = self.index.search(xq, k, params=params)  # noqa: E741 - faiss naming
        # A selector only prunes the traversal; drop any banned id that slips through.
        gone = np.isin(I, banned)
        D[gone], I[gone] = -np.inf, -1
        return D, I

    def _search_index(self) -> Any:
        if self._gpu_failed or faiss.get_num_gpus() == 0 or self.tombstones:
            return self.index
        if self._gpu is None:
            try:
                self._gpu = faiss.index_cpu_to_all_gpus(self.index)
            except (RuntimeError, AttributeError) as exc:  # e.g. HNSW has no GPU version
                logger.warning(
                    "searching on the CPU: cannot copy %s to the GPU (%s)", self.factory, exc
                )
                self._gpu_failed = True
                return self.index
        return self._gpu

    def settings(self) -> dict[str, Any]:
        """The effective search parameters (for ``Catalog.info``)."""
        out: dict[str, Any] = {}
        ivf = extract_ivf(self.inner)
        if ivf is not None:
            out["nlist"] = int(ivf.nlist)
            out["nprobe"] = int(ivf.nprobe)
        if is_hnsw(self.inner):
            out["efSearch"] = int(self.inner.hnsw.efSearch)
        return out

    # -- files -----------------------------------------------------------------------------

    def save(self, path: Path, *, uuid: str, applied: int, vectors_version: int) -> int:
        """Write the index and its header atomically; returns the file size in bytes.

        Tombstoned vectors stay in the file; a reader reconciles the file's ids with the
        database when it loads it.
        """
        return write_index_file(
            path,
            self.index,
            uuid=uuid,
            factory=self.factory,
            exact=self.exact,
            applied=applied,
            vectors_version=vectors_version,
        )

    @classmethod
    def load(
        cls, path: Path, *, search_params: str | None = None
    ) -> tuple[VectorIndex, IndexHeader]:
        """Read a file written by :meth:`save`.

        Raises:
            IndexFileError: missing, truncated, corrupt (CRC) or unreadable by faiss.
        """
        index, info = read_index_file(path)
        return cls(index, factory=info.factory, exact=info.exact, search_params=search_params), info


def _ivf_ids(ivf: Any) -> np.ndarray:
    """Every id stored in an IVF index's inverted lists, ``(ntotal,)`` int64."""
    invlists = ivf.invlists
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            ptr = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(ptr, size).astype(np.int64))
            invlists.release_ids(list_no, ptr)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)
