"""A process's FAISS index, kept in step with the catalog database.

The database (:mod:`index.store`) is the truth; :class:`SyncedIndex` holds a derived
:class:`~index.faiss_index.VectorIndex` and the ``change_seq`` of the last change-log entry
it reflects (``applied``):

* **open**: load ``index.faiss`` if its header matches the database (uuid, factory,
  dimension, vectors version, not ahead of the log), then *reconcile*: read every stored
  id in one snapshot, remove the index's extra ids, add the missing vectors. A missing,
  stale or corrupt file means a rebuild from the stored vectors. Either way the index
  then equals the database as of the snapshot, whatever crash came before.
* **sync** (before every search, after every write): apply the log entries after
  ``applied`` — adds with their vectors, deletes — in one indexed query. A ``reindex``
  entry written by another process (new factory, training, new embedder) means: re-read
  the settings and open again, which loads the file that process saved just before.
* **maintain**: train an exact fallback once enough vectors exist, rebuild when
  tombstones pile up, save every ``autosave_every`` changes.

Every method takes the instance's lock; searches and mutations are serialised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from index.change_log import changes_since, last_change, snapshot, stored_vectors
from index.faiss_factory import check_search_params, train_size
from index.faiss_index import VectorIndex
from index.index_file import IndexFileError, remove_stale_temp_files
from index.store import CatalogStore
from matcher.errors import CatalogError, InvalidArgumentError

logger = logging.getLogger(__name__)

INDEX_NAME = "index.faiss"
#: Training sample cap: at least the threshold, at most this many vectors beyond it.
TRAIN_SAMPLE = 64 * 256


class SyncedIndex:
    """The catalog's FAISS index in one process.

    Args:
        store: the catalog database.
        folder: the catalog folder (where ``index.faiss`` lives).
        search_params: ``faiss.ParameterSpace`` overrides.
        min_train_size: vectors needed before an IVF/PQ factory is trained, or ``None``
            for :func:`~index.faiss_factory.train_size`.
        autosave_every: save after this many applied changes.
        on_reindex: called (with the lock held) after another process re-indexed and the
            settings were re-read, before the index is reopened.
    """

    def __init__(
        self,
        store: CatalogStore,
        folder: Path,
        *,
        search_params: str | None,
        min_train_size: int | None,
        autosave_every: int,
        on_reindex: Callable[[], None],
    ) -> None:
        self.store = store
        self.path = Path(folder) / INDEX_NAME
        self.search_params = search_params
        self.min_train_size = min_train_size
        self.autosave_every = autosave_every
        self.on_reindex = on_reindex
        self.lock = threading.RLock()
        self._own_reindex: set[int] = set()
        self._train_failed = False
        self._thresholds: dict[str, int] = {}
        self._read_meta()
        check_search_params(self.factory, self.dim, search_params)
        with self.lock:
            self._open()

    def _read_meta(self) -> None:
        self._thresholds = {}
        meta = self.store.meta()
        self.uuid = meta["uuid"]
        self.factory = meta["factory"]
        self.dim = int(meta["dim"])
        self.vectors_version = int(meta["vectors_version"])

    # -- public ------------------------------------------------------------------------------

    def sync(self) -> None:
        """Apply the change-log entries written (by any process) since the last applied."""
        with self.lock:
            while True:
                changes = changes_since(self.store, self.applied)
                if not changes:
                    break
                if any(
                    c.op == "reindex" and c.change_seq not in self._own_reindex for c in changes
                ):
                    logger.info("catalog index re-built by another process; reloading")
                    self._read_meta()
                    self.on_reindex()
                    self._open()
                    continue
                removed = np.array([c.seq for c in changes if c.op == "delete"], np.int64)
                added = [c for c in changes if c.op == "add" and c.vector is not None]
                self.index.remove(removed)
                if added:
                    ids = np.array([c.seq for c in added], np.int64)
                    xb = np.frombuffer(b"".join(c.vector for c in added), np.float32)
                    self.index.add(ids, xb.reshape(len(added), self.dim))
                self.applied = changes[-1].change_seq
            self._maintain()

    def search(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Sync, then top-``k``: ``D`` ``(nq, k)`` scores and ``I`` ``(nq, k)`` product seqs.

        Raises:
            InvalidArgumentError: ``xq`` is not ``(nq, dim)``.
        """
        with self.lock:
            self.sync()
            if xq.ndim != 2 or xq.shape[1] != self.dim:
                raise InvalidArgumentError(
                    f"query vectors must be (nq, {self.dim}), got {tuple(xq.shape)}"
                )
            return self.index.search(xq, k)

    def ids(self) -> np.ndarray:
        """The product seqs in the index after a sync."""
        with self.lock:
            self.sync()
            return self.index.ids()

    def rebuild(self, factory: str | None = None, *, force_train: bool = False) -> None:
        """Build the index again from the stored vectors and tell the other processes.

        Raises:
            InvalidArgumentError: the search parameters do not apply to ``factory``.
            CatalogError: training failed.
        """
        check_search_params(factory or self.factory, self.dim, self.search_params)
        with self.lock:
            self.sync()
            self._rebuild(factory or self.factory, announce=True, force_train=force_train)

    def adopt(self, change_seq: int) -> None:
        """Mark a ``reindex`` entry this process logged itself (nothing to reload)."""
        self._own_reindex.add(change_seq)

    def reopen(self) -> None:
        """Re-read the settings and open the index again (after this process re-embedded)."""
        with self.lock:
            self._read_meta()
            self._open()

    def info(self) -> dict[str, Any]:
        """Index settings and state, JSON-ready."""
        with self.lock:
            self.sync()
            return {
                "factory": self.factory,
                "state": "exact (untrained)" if self.index.exact else "ready",
                "vectors": len(self.index),
                "deleted_pending": len(self.index.tombstones),
                "train_size": self.train_threshold(),
                "applied_change": self.applied,
                **self.index.settings(),
            }

    def close(self) -> None:
        """Save if the index changed since it was last saved."""
        with self.lock:
            if self.applied != self._saved:
                self._save()

    def train_threshold(self, factory: str | None = None) -> int:
        """Vectors needed before ``factory`` (default: the catalog's) is trained."""
        factory = factory or self.factory
        if factory not in self._thresholds:
            needed = train_size(factory, self.dim)
            if self.min_train_size is not None and needed:
                needed = max(train_size(factory, self.dim, minimum=True), self.min_train_size)
            self._thresholds[factory] = needed
        return self._thresholds[factory]

    # -- internals -----------------------------------------------------------------------------

    def _open(self) -> None:
        remove_stale_temp_files(self.path.parent, INDEX_NAME)
        try:
            index, header = VectorIndex.load(self.path, search_params=self.search_params)
            expected = (self.uuid, self.factory, self.dim, self.vectors_version)
            if (header.uuid, header.factory, header.dim, header.vectors_version) != expected:
                raise IndexFileError("it was written for other catalog settings")
            if header.applied > last_change(self.store):
                raise IndexFileError("it is ahead of the database")
        except IndexFileError as exc:
            if self.path.exists():
                logger.warning("rebuilding %s: %s", self.path, exc)
            self._rebuild(self.factory)
            return
        self.index = index
        self.applied = self._saved = header.applied
        self._train_failed = False
        if self._reconcile():
            logger.info("caught up %s with the database", self.path)
        if not self._maintain() and self.applied != self._saved:
            self._save()

    def _reconcile(self) -> bool:
        """Make the index hold exactly the stored vectors; returns whether it changed."""
        last, db_ids = snapshot(self.store)
        index_ids = self.index.ids()
        extra = np.setdiff1d(index_ids, db_ids)
        missing = np.setdiff1d(db_ids, index_ids)
        self.index.remove(extra)
        for ids, xb in stored_vectors(self.store, missing, dim=self.dim):
            self.index.add(ids, xb)
        self.applied = last
        return bool(len(extra) or len(missing))

    def _maintain(self) -> bool:
        """Train, compact or save when due; returns whether the index was rebuilt."""
        due = len(self.index) >= self.train_threshold() > 0
        if self.index.exact and due and not self._train_failed:
            logger.info("training index %s on %d vectors", self.factory, len(self.index))
            try:
                self._rebuild(self.factory, announce=True)
            except CatalogError as exc:  # stay exact; an explicit rebuild may succeed later
                logger.error("index stays exact: %s", exc)
                self._train_failed = True
                return False
            return True
        tombstones = len(self.index.tombstones)
        if tombstones > max(100, len(self.index) // 10):
            logger.info("rebuilding index %s to drop %d deleted vectors", self.factory, tombstones)
            self._rebuild(self.factory, announce=True)
            return True
        if self.applied - self._saved >= self.autosave_every:
            self._save()
        return False

    def _rebuild(self, factory: str, *, announce: bool = False, force_train: bool = False) -> None:
        """Index the stored vectors of one snapshot; save; with ``announce`` set the factory
        and log a ``reindex`` for the other processes (after the file is in place)."""
        last, db_ids = snapshot(self.store)
        threshold = self.train_threshold(factory)
        trained = bool(threshold) and (force_train or len(db_ids) >= threshold)
        index = VectorIndex.empty(
            factory, self.dim, trained=trained, search_params=self.search_params
        )
        if trained:
            rng = np.random.default_rng(0)
            size = min(len(db_ids), max(threshold, TRAIN_SAMPLE))
            sample = np.sort(rng.choice(db_ids, size=size, replace=False))
            parts = [xb for _, xb in stored_vectors(self.store, sample, dim=self.dim)]
            xt = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
            try:
                index.train(xt)
            except RuntimeError as exc:
                raise CatalogError(
                    f"cannot train index {factory!r} on {len(xt)} vectors: "
                    f"{str(exc).strip().splitlines()[-1]}"
                ) from None
        for ids, xb in stored_vectors(self.store, None, dim=self.dim):
            keep = np.isin(ids, db_ids)
            index.add(ids[keep], xb[keep])
        self.index, self.applied, self.factory = index, last, factory
        self._train_failed = False
        self._save()
        if announce:
            self._own_reindex.add(self.store.set_meta({"factory": factory}, reindex=True))

    def _save(self) -> None:
        size = self.index.save(
            self.path, uuid=self.uuid, applied=self.applied, vectors_version=self.vectors_version
        )
        self._saved = self.applied
        logger.debug("saved %s (%d vectors, %d bytes)", self.path, len(self.index), size)
