"""A process's FAISS index, kept in step with the catalog database.

The database (:mod:`index.store`) is the truth; :class:`SyncedIndex` holds a derived
:class:`~index.faiss_index.VectorIndex` and the ``change_seq`` of the last change-log entry
it reflects (``applied``):

* **open**: load ``index.faiss`` if its header matches the database (uuid, factory,
  dimension, vectors version, not ahead of the log), then *reconcile*: read every stored
  id in one snapshot, remove the index's extra ids, add the missing vectors. A missing,
  stale or corrupt file means a rebuild from the stored vectors. Either way the index
  then equals the database as of the snapshot, whatever crash came before.
* **sync** (before every search unless a listening follower keeps the index fresh, after
  every write): apply the log entries after
  ``applied`` — adds with their vectors, deletes — in one indexed query. A ``reindex``
  entry written by another process (new factory, training, new embedder) means: re-read
  the settings and open again, which loads the file that process saved just before.
* **maintain**: train an exact fallback once enough vectors exist, rebuild when
  tombstones pile up, save every ``autosave_every`` changes. By default this happens in
  ``sync``; with ``background`` set it happens only in :meth:`SyncedIndex.maintain`, which
  a replica's follower thread calls (:mod:`index.replica`): the new index is built outside
  the lock while searches go on with the old one, then swapped in — training never runs
  inside a client's request.

Every method takes the instance's lock; searches and mutations are serialised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from index.backend import CatalogBackend
from index.faiss_factory import check_search_params, train_size
from index.faiss_index import VectorIndex
from index.index_file import IndexFileError, remove_stale_temp_files
from matcher.errors import CatalogError, InvalidArgumentError

logger = logging.getLogger(__name__)

INDEX_NAME = "index.faiss"
#: ``meta`` key: ``"1"`` after ``train()`` trained the index below its threshold.
FORCED_TRAINING = "forced_training"
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
        background: train and compact only in :meth:`maintain` (a background thread), never
            in :meth:`sync`.
    """

    def __init__(
        self,
        store: CatalogBackend,
        folder: Path,
        *,
        search_params: str | None,
        min_train_size: int | None,
        autosave_every: int,
        on_reindex: Callable[[], None],
        background: bool = False,
    ) -> None:
        self.store = store
        self.path = Path(folder) / INDEX_NAME
        self.search_params = search_params
        self.min_train_size = min_train_size
        self.autosave_every = autosave_every
        self.on_reindex = on_reindex
        self.background = background
        self.lock = threading.RLock()
        self._own_reindex: set[int] = set()
        self._train_failed = False
        self._thresholds: dict[str, int] = {}
        self._behind_since: float | None = None
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
        # `train()` trained below the threshold: every process trains too (a machine with
        # its own cache cannot load the file the training process saved)
        self.forced_training = meta.get(FORCED_TRAINING) == "1"

    # -- public ------------------------------------------------------------------------------

    def sync(self) -> None:
        """Apply the change-log entries written (by any process) since the last applied."""
        with self.lock:
            while True:
                changes = self.store.changes_since(self.applied)
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
            if self.background:
                self._autosave()
            else:
                self._maintain()

    def search(self, xq: np.ndarray, k: int, *, sync: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Sync (unless told not to: a follower keeps the index fresh), then top-``k``:
        ``D`` ``(nq, k)`` scores and ``I`` ``(nq, k)`` product seqs.

        Raises:
            InvalidArgumentError: ``xq`` is not ``(nq, dim)``.
        """
        with self.lock:
            if sync:
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

    def lag(self) -> dict[str, Any]:
        """How far this index is behind the database's change log (without syncing).

        Returns:
            ``{"changes_behind", "lag_seconds", "applied_change"}``: the log entries not
            yet applied, the age of the oldest of them (where the database records when
            entries were written; else how long this index has been seen behind), and the
            last entry applied.
        """
        applied = self.applied
        behind, age = self.store.pending_changes(applied)
        now = time.monotonic()
        if behind == 0:
            self._behind_since, seconds = None, 0.0
        elif age is not None:
            seconds = age
        else:
            if self._behind_since is None:
                self._behind_since = now
            seconds = now - self._behind_since
        return {"changes_behind": behind, "lag_seconds": seconds, "applied_change": applied}

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
            if header.applied > self.store.last_change():
                raise IndexFileError("it is ahead of the database")
        except IndexFileError as exc:
            if self.path.exists():
                logger.warning("rebuilding %s: %s", self.path, exc)
            self._rebuild(self.factory, force_train=self.forced_training)
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
        last, db_ids = self.store.snapshot()
        index_ids = self.index.ids()
        extra = np.setdiff1d(index_ids, db_ids)
        missing = np.setdiff1d(db_ids, index_ids)
        self.index.remove(extra)
        for ids, xb in self.store.stored_vectors(missing, dim=self.dim):
            self.index.add(ids, xb)
        self.applied = last
        return bool(len(extra) or len(missing))

    def _due(self) -> str | None:
        """What maintenance is due: ``"train"``, ``"compact"`` or ``None``."""
        threshold = self.train_threshold()
        due = threshold > 0 and (len(self.index) >= threshold or self.forced_training)
        if self.index.exact and due and not self._train_failed:
            return "train"
        if len(self.index.tombstones) > max(100, len(self.index) // 10):
            return "compact"
        return None

    def _autosave(self) -> None:
        if self.applied - self._saved >= self.autosave_every:
            self._save()

    def _maintain(self) -> bool:
        """Train, compact or save when due; returns whether the index was rebuilt."""
        due = self._due()
        if due is None:
            self._autosave()
            return False
        logger.info("%s index %s (%d vectors)", due, self.factory, len(self.index))
        try:
            self._rebuild(self.factory, announce=True, force_train=self.forced_training)
        except CatalogError as exc:  # stay exact; an explicit rebuild may succeed later
            logger.error("index stays exact: %s", exc)
            self._train_failed = True
            return False
        return True

    def maintain(self) -> bool:
        """Sync, then train or compact if due, building the new index outside the lock
        (searches go on meanwhile) and swapping it in; returns whether it was rebuilt."""
        with self.lock:
            self.sync()
            due = self._due()
            if due is None:
                self._autosave()
                return False
            factory, version = self.factory, self.vectors_version
        logger.info("%s index %s in the background", due, factory)
        try:
            built = self._build(factory, force_train=self.forced_training)
        except CatalogError as exc:
            logger.error("index stays exact: %s", exc)
            with self.lock:
                self._train_failed = True
            return False
        with self.lock:
            if (self.factory, self.vectors_version) != (factory, version):
                return False  # re-indexed meanwhile; the next round decides again
            self._install(*built, factory, announce=True, forced=self.forced_training)
            self.sync()
        return True

    def _rebuild(self, factory: str, *, announce: bool = False, force_train: bool = False) -> None:
        """Index the stored vectors of one snapshot; save; with ``announce`` set the factory
        and log a ``reindex`` for the other processes (after the file is in place)."""
        built = self._build(factory, force_train=force_train)
        self._install(*built, factory, announce=announce, forced=force_train)

    def _build(self, factory: str, *, force_train: bool = False) -> tuple[VectorIndex, int]:
        """A new index of the stored vectors of one snapshot (trained when enough exist),
        and that snapshot's last ``change_seq``. Reads only the database."""
        last, db_ids = self.store.snapshot()
        threshold = self.train_threshold(factory)
        trained = bool(threshold) and (force_train or len(db_ids) >= threshold)
        index = VectorIndex.empty(
            factory, self.dim, trained=trained, search_params=self.search_params
        )
        if trained:
            rng = np.random.default_rng(0)
            size = min(len(db_ids), max(threshold, TRAIN_SAMPLE))
            sample = np.sort(rng.choice(db_ids, size=size, replace=False))
            parts = [xb for _, xb in self.store.stored_vectors(sample, dim=self.dim)]
            xt = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
            try:
                index.train(xt)
            except RuntimeError as exc:
                raise CatalogError(
                    f"cannot train index {factory!r} on {len(xt)} vectors: "
                    f"{str(exc).strip().splitlines()[-1]}"
                ) from None
        for ids, xb in self.store.stored_vectors(None, dim=self.dim):
            keep = np.isin(ids, db_ids)
            index.add(ids[keep], xb[keep])
        return index, last

    def _install(
        self, index: VectorIndex, last: int, factory: str, *, announce: bool, forced: bool
    ) -> None:
        self.index, self.applied, self.factory = index, last, factory
        self._train_failed = False
        self._save()
        if announce:
            self.forced_training = forced
            settings = {"factory": factory, FORCED_TRAINING: "1" if forced else "0"}
            self._own_reindex.add(self.store.set_meta(settings, reindex=True))

    def _save(self) -> None:
        size = self.index.save(
            self.path, uuid=self.uuid, applied=self.applied, vectors_version=self.vectors_version
        )
        self._saved = self.applied
        logger.debug("saved %s (%d vectors, %d bytes)", self.path, len(self.index), size)
