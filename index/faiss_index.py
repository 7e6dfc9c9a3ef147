"""The catalog's FAISS index: built from a factory string, id-mapped, persisted atomically.

:class:`VectorIndex` holds ``faiss.index_factory(dim, factory, METRIC_INNER_PRODUCT)`` —
scores are cosine similarities of unit vectors — with the catalog's ids (product seqs):
IVF indexes store ids natively; the others are wrapped in an ``IndexIDMap2``. (An id map
around an IVF index would be wrong: IVF removals do not renumber the entries the way the
id map's compaction assumes.) Around it comes what the catalog needs:

* **Training.** Factories that need training (``IVF…``, ``PQ…``) are trained only once
  :func:`train_size` vectors are stored (faiss's own guideline of 39 points per centroid).
  Until then the index is *exact*: an id-mapped ``IndexFlatIP`` over the stored vectors,
  so search results are exact while the catalog is small; the catalog swaps in the trained
  index when enough vectors exist.
* **Deletion.** Indexes that cannot remove vectors (HNSW) keep deleted ids as tombstones,
  excluded at search time with an ``IDSelector``; the catalog rebuilds them when the
  tombstones pile up.
* **Default search parameters** that reach recall@10 >= 0.95 on clustered data:
  ``nprobe = clamp(nlist / 32, 32, nlist)``, HNSW ``efSearch = 128`` (and
  ``efConstruction = 80`` for the graph it builds); overridden by a
  ``faiss.ParameterSpace`` string such as ``"nprobe=64,efSearch=128"``.
* **Files.** :meth:`VectorIndex.save` writes one file — magic, a JSON header (catalog
  uuid, factory, dimension, the last database change the index reflects, a CRC of the
  payload) and ``faiss.serialize_index`` bytes — to a temporary file, fsyncs it and
  renames it into place, so a reader sees the old file or the new one, never a mix.
* **GPU.** When faiss sees GPUs, searches run on a GPU copy (``index_cpu_to_all_gpus``),
  re-made after mutations; the CPU index stays the one that is mutated and saved.

Naming follows faiss: ``xb`` database vectors, ``xq`` queries, ``k``, ``D`` scores and
``I`` ids (``-1`` where fewer than ``k`` results exist).
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from matcher.errors import InvalidArgumentError
from matcher.files import atomic_write

logger = logging.getLogger(__name__)

MAGIC = b"SIAMIDX1"
#: Points per centroid before an IVF/PQ index is trained (faiss warns below 39).
TRAIN_POINTS_PER_CENTROID = 39
#: Default HNSW ``efSearch``.
DEFAULT_EF_SEARCH = 128
#: HNSW ``efConstruction`` (faiss's default, 40, builds graphs too poor for clustered
#: catalogs of a million vectors: recall@10 0.69 at efSearch 64 in benchmarks/catalog.py).
DEFAULT_EF_CONSTRUCTION = 80


class IndexFileError(Exception):
    """An index file is missing, corrupt or belongs to another catalog (internal: the
    catalog answers it by rebuilding from the database)."""


@dataclass(frozen=True)
class IndexHeader:
    """What an index file records about itself.

    Attributes:
        uuid: the catalog's uuid.
        factory: the factory string the catalog asked for.
        dim: vector length.
        exact: the index is the exact fallback (factory not trained yet).
        applied: last database ``change_seq`` the index reflects.
        vectors_version: the catalog's vectors version (bumped by re-embedding).
    """

    uuid: str
    factory: str
    dim: int
    exact: bool
    applied: int
    vectors_version: int


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
        _configure(faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT), search_params)


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
    ivf = _ivf(index)
    if ivf is not None:
        centroids = max(centroids, int(ivf.nlist))
    for part in (index, ivf):
        pq = getattr(faiss.downcast_index(part), "pq", None) if part is not None else None
        if pq is not None:
            centroids = max(centroids, int(pq.ksub))
    return centroids if minimum else TRAIN_POINTS_PER_CENTROID * centroids


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
        _configure(self.inner, None if exact else search_params)

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
        return not _is_hnsw(self.inner)

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
        native = _ivf(inner) is not None and isinstance(
            faiss.downcast_index(inner), faiss.IndexIVF | faiss.IndexPreTransform
        )
        index = inner if native else faiss.IndexIDMap2(inner)
        return cls(index, factory=factory, exact=exact, search_params=search_params)

    def train(self, xt: np.ndarray) -> None:
        """Train the (empty, untrained) factory index on ``xt`` ``(n, dim)`` float32."""
        assert self.index.ntotal == 0 and not self.exact
        self.index.train(np.ascontiguousarray(xt, dtype=np.float32))
        _configure(self.inner, self.search_params)  # the factory index replaced the fallback

    # -- contents --------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    def ids(self) -> np.ndarray:
        """Live ids, ``(n,)`` int64."""
        if isinstance(self.index, faiss.IndexIDMap2):
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        else:
            ids = _ivf_ids(_ivf(self.index))
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
        ivf = _ivf(self.inner)
        if ivf is not None:
            out["nlist"] = int(ivf.nlist)
            out["nprobe"] = int(ivf.nprobe)
        if _is_hnsw(self.inner):
            out["efSearch"] = int(self.inner.hnsw.efSearch)
        return out

    # -- files -----------------------------------------------------------------------------

    def save(self, path: Path, *, uuid: str, applied: int, vectors_version: int) -> int:
        """Write the index and its header atomically; returns the file size in bytes.

        Tombstoned vectors stay in the file; a reader reconciles the file's ids with the
        database when it loads it.
        """
        payload = faiss.serialize_index(self.index)
        header = {
            "uuid": uuid,
            "factory": self.factory,
            "dim": self.dim,
            "exact": self.exact,
            "applied": int(applied),
            "vectors_version": int(vectors_version),
            "payload_bytes": int(payload.nbytes),
            "payload_crc32": zlib.crc32(payload) & 0xFFFFFFFF,
        }
        head = json.dumps(header).encode()
        chunks = [MAGIC, struct.pack("<Q", len(head)), head, memoryview(payload)]
        atomic_write(path, lambda fh: fh.writelines(chunks))
        return len(MAGIC) + 8 + len(head) + int(payload.nbytes)

    @classmethod
    def load(
        cls, path: Path, *, search_params: str | None = None
    ) -> tuple[VectorIndex, IndexHeader]:
        """Read a file written by :meth:`save`.

        Raises:
            IndexFileError: missing, truncated, corrupt (CRC) or unreadable by faiss.
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IndexFileError(f"cannot read {path}: {exc}") from None
        if data[: len(MAGIC)] != MAGIC or len(data) < len(MAGIC) + 8:
            raise IndexFileError(f"{path} is not a catalog index file")
        (head_len,) = struct.unpack("<Q", data[len(MAGIC) : len(MAGIC) + 8])
        start = len(MAGIC) + 8
        try:
            header = json.loads(data[start : start + head_len])
            payload = np.frombuffer(data, np.uint8, offset=start + head_len)
            if payload.nbytes != header["payload_bytes"]:
                raise IndexFileError(f"{path} is truncated")
            if zlib.crc32(payload) & 0xFFFFFFFF != header["payload_crc32"]:
                raise IndexFileError(f"{path} fails its checksum")
            info = IndexHeader(
                uuid=str(header["uuid"]),
                factory=str(header["factory"]),
                dim=int(header["dim"]),
                exact=bool(header["exact"]),
                applied=int(header["applied"]),
                vectors_version=int(header["vectors_version"]),
            )
            index = faiss.deserialize_index(payload)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexFileError(f"{path} is corrupt: {exc}") from None
        wrapped = isinstance(index, faiss.IndexIDMap2) or _ivf(index) is not None
        if not wrapped or index.d != info.dim:
            raise IndexFileError(f"{path} holds a {type(index).__name__}, not the catalog's index")
        return cls(index, factory=info.factory, exact=info.exact, search_params=search_params), info


def remove_stale_temp_files(folder: Path, name: str) -> None:
    """Delete temporary files of :func:`atomic_write` left by dead processes."""
    for tmp in folder.glob(f".{name}.*.tmp"):
        parts = tmp.name[len(name) + 2 :].split(".")
        if parts and parts[0].isdigit() and not _alive(int(parts[0])):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ivf(index: Any) -> Any:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


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


def _is_hnsw(index: Any) -> bool:
    return isinstance(faiss.downcast_index(index), faiss.IndexHNSW)


def _configure(index: Any, search_params: str | None) -> None:
    ivf = _ivf(index)
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
