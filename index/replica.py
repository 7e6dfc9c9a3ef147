"""A replica's follower: keeps a process's FAISS index caught up in the background.

With a PostgreSQL catalog every service process on every machine holds its own FAISS index
(saved in a local cache folder) and follows the shared change log. A :class:`ChangeFollower`
thread waits on the database's ``LISTEN`` channel, which every write notifies at commit, and
polls every ``poll`` seconds as a fallback (a lost connection, a missed notification); on a
SQLite catalog folder it only polls. Each wake-up applies the new log entries and does the
index's due maintenance (training, compaction, snapshots) outside any request
(:meth:`index.synced_index.SyncedIndex.maintain`). While the follower listens, searches read
the local index without asking the database first (the replica's lag, milliseconds after a
commit, is reported); without a listening follower every search syncs first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from index.backend import CatalogBackend
from index.pg_db import CHANNEL
from index.pg_store import PostgresStore
from index.synced_index import SyncedIndex

logger = logging.getLogger(__name__)

#: Seconds between polls when no notification arrives.
POLL_SECONDS = 1.0
#: Seconds between two warnings about a failing follower.
WARN_EVERY = 30.0


class ChangeFollower:
    """A daemon thread applying the change log to ``index`` (see the module docstring).

    Args:
        store: the catalog database (PostgreSQL is listened to; others are polled).
        index: the process's index.
        poll: seconds between polls without a notification.
        on_round: called after every round (e.g. to publish the replica's lag).
    """

    def __init__(
        self,
        store: CatalogBackend,
        index: SyncedIndex,
        *,
        poll: float = POLL_SECONDS,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.poll = poll
        self.on_round = on_round
        self.listens = isinstance(store, PostgresStore)
        self.listening = False
        self._stop = threading.Event()
        self._warned = 0.0
        self._thread = threading.Thread(target=self._run, name="siammatch-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        listener = None
        while not self._stop.is_set():
            try:
                if listener is None and self.listens:
                    listener = self.store.listener()
                self.index.maintain()
                # searches skip their own sync only once LISTEN runs and the index has
                # applied everything committed before it began
                self.listening = listener is not None
                if self.on_round is not None:
                    self.on_round()
                if listener is None:
                    self._stop.wait(self.poll)
                    continue
                if self._stop.is_set():  # stopped before LISTEN began: its wake-up was lost
                    continue
                for _ in listener.notifies(timeout=self.poll, stop_after=1):
                    pass
            except Exception as exc:  # the follower must outlive a database restart
                self.listening = False
                self._warn(exc)
                if listener is not None:
                    listener.close()
                    listener = None
                self._stop.wait(self.poll)
        self.listening = False
        if listener is not None:
            listener.close()

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            logger.warning("catalog follower: %s (retrying every %.1f s)", exc, self.poll)

    def stop(self) -> None:
        """Stop the thread (wakes it with a notification instead of waiting a poll)."""
        self._stop.set()
        if not self.listens:
            self._thread.join(timeout=self.poll + 5)
            return
        try:
            with self.store.pool.connection(timeout=1.0) as conn:
                conn.execute("SELECT pg_notify(%s, 'stop')", (CHANNEL,))
        except Exception:  # without the wake-up the thread ends at its next poll
            logger.debug("catalog follower: no wake-up notification sent")
        self._thread.join(timeout=self.poll + 5)
