"""A catalog folder: where one may be; opening, maintaining and closing it.

:func:`catalog_location_problem` says whether a path can hold a catalog. A
:class:`CatalogFolder` opens (or creates) the catalog in a folder — its database
(:mod:`index.store`), its embedder (:mod:`index.embedder_store`), its template cache
(:mod:`index.templates`) and its FAISS index kept in step with the database
(:mod:`index.synced_index`) — and rebuilds, trains, verifies, describes and closes it.
:class:`~index.catalog.Catalog` adds the product operations.
"""

from __future__ import annotations

import logging
import os
import time
import uuid as uuid_lib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from index.backend import open_store
from index.embedder_store import (
    embedder_blobs,
    embedder_settings,
    reembed_products,
    stored_embedder,
)
from index.faiss_factory import check_factory, check_search_params, train_size
from index.image_store import image_store_from
from index.location import (
    DB_NAME,
    catalog_location_problem,
    index_cache_root,
    is_database_url,
    redact_url,
)
from index.replica import ChangeFollower
from index.synced_index import INDEX_NAME, SyncedIndex
from index.templates import TemplateCache
from matcher.embedder import (
    Embedder,
    EmbedderSpec,
    default_embedder,
    embedder_fingerprint,
)
from matcher.errors import CatalogError
from matcher.siamese_matcher import SiameseMatcher

logger = logging.getLogger(__name__)

FORMAT = "siammatch-catalog"
FORMAT_VERSION = "1"
#: Template features kept in memory per catalog.
TEMPLATE_CACHE_SIZE = 256
#: Product names a replica remembers (``seq -> product_id``).
NAME_CACHE_SIZE = 200_000


class CatalogFolder:
    """An open catalog folder: its settings, embedder, database and index (see the module
    docstring). Its arguments are those of :class:`~index.catalog.Catalog`, which documents
    them and adds the product operations.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        embedder: Embedder | None = None,
        factory: str = "Flat",
        matcher: SiameseMatcher | None = None,
        create: bool = True,
        search_params: str | None = None,
        min_train_size: int | None = None,
        replace_embedder: bool = False,
        autosave_every: int = 10_000,
        index_cache: str | os.PathLike | None = None,
        follow: bool | None = None,
        image_store: str | None = None,
    ) -> None:
        problem = catalog_location_problem(path, create=create)
        if problem is not None:
            raise CatalogError(problem)
        self.database = is_database_url(path)
        self.location = redact_url(os.fspath(path)) if self.database else os.fspath(path)
        self.path = index_cache_root(index_cache) if self.database else Path(path)
        if not self.database and not (self.path / DB_NAME).exists():
            self._check_factory(embedder, factory, search_params)  # before anything is written
        self.matcher = matcher
        self.search_params = search_params
        self._pid = os.getpid()
        self._closed = False
        self._reembedded: int | None = None
        self._follower: ChangeFollower | None = None
        self.follow_hooks: list[Callable[[dict[str, Any]], None]] = []
        self._names: dict[int, str] = {}
        self._store = open_store(
            path,
            create=create,
            image_store=image_store_from(image_store) if self.database else None,
        )
        self._templates = TemplateCache(self._store, size=TEMPLATE_CACHE_SIZE)
        follow = self.database if follow is None else follow
        try:
            self._open(embedder, factory, create=create, replace_embedder=replace_embedder)
            if self.database:  # this machine's FAISS cache of this catalog
                self.path = self.path / self.uuid
                self.path.mkdir(parents=True, exist_ok=True)
            self._index = SyncedIndex(
                self._store,
                self.path,
                search_params=search_params,
                min_train_size=min_train_size,
                autosave_every=autosave_every,
                on_reindex=self._on_reindex,
                background=follow,
            )
        except BaseException:
            self._store.close()
            raise
        if self._reembedded is not None:
            self._index.adopt(self._reembedded)
        if follow:
            self._follower = ChangeFollower(self._store, self._index, on_round=self._followed)

    @staticmethod
    def _check_factory(embedder: Embedder | None, factory: str, search_params: str | None) -> None:
        dim = embedder.dim if embedder is not None else EmbedderSpec().dim
        check_search_params(check_factory(factory, dim), dim, search_params)

    # -- setup -----------------------------------------------------------------------------

    def _open(
        self, embedder: Embedder | None, factory: str, *, create: bool, replace_embedder: bool
    ) -> None:
        meta = self._store.meta()
        if "uuid" not in meta:
            if not create:
                raise CatalogError(f"no catalog at {self.location!r}")
            self._check_factory(embedder, factory, self.search_params)
            self._create(embedder or default_embedder(device=self._device), factory)
            meta = self._store.meta()
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise CatalogError(
                f"{self.location} holds a catalog of an unknown format "
                f"({meta.get('format')} {meta.get('version')})"
            )
        if meta.get("migration") == "incomplete":
            raise CatalogError(
                f"{self.location} holds an unfinished copy of a catalog; run the same "
                "`siammatch catalog migrate` command again to finish it"
            )
        self._read_meta(meta)
        if factory != self.factory:
            logger.info(
                "catalog %s keeps its index %r, not %r (change it with rebuild)",
                self.location,
                self.factory,
                factory,
            )
        self.embedder = self._choose_embedder(embedder, replace=replace_embedder)

    @property
    def _device(self) -> torch.device | str:
        return self.matcher.device if self.matcher is not None else "cpu"

    def _create(self, embedder: Embedder, factory: str) -> None:
        values = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "uuid": uuid_lib.uuid4().hex,
            "factory": factory,
            "created_at": repr(time.time()),
            **embedder_settings(embedder, vectors_version=1),
        }
        if self._store.initialise(values, embedder_blobs(embedder)):
            logger.info("created catalog %s (index %s, %d-d)", self.location, factory, embedder.dim)

    def _read_meta(self, meta: dict[str, str]) -> None:
        self.uuid = meta["uuid"]
        self.factory = meta["factory"]
        self.dim = int(meta["dim"])
        self._fingerprint = meta["embedder_fingerprint"]
        self._vectors_version = int(meta["vectors_version"])

    def _choose_embedder(self, embedder: Embedder | None, *, replace: bool) -> Embedder:
        if embedder is None:
            return self._stored_embedder()
        if embedder_fingerprint(embedder) == self._fingerprint:
            return embedder
        if not replace:
            raise CatalogError(
                f"catalog {self.location} was built with another embedder; open it without "
                "`embedder` to use its own, or with replace_embedder=True to re-embed its "
                f"{self._store.count()} products"
            )
        self._reembedded = reembed_products(
            self._store, embedder, vectors_version=self._vectors_version + 1
        )
        self._read_meta(self._store.meta())
        return embedder

    def _stored_embedder(self) -> Embedder:
        return stored_embedder(self._store, fingerprint=self._fingerprint, device=self._device)

    def _on_reindex(self) -> None:
        """Another process re-indexed; pick up its embedder if it replaced ours."""
        self._read_meta(self._store.meta())
        if embedder_fingerprint(self.embedder) != self._fingerprint:
            logger.warning("catalog %s has a new embedder; switching to it", self.location)
            self.embedder = self._stored_embedder()

    def _followed(self) -> None:
        """After each follower round: hand the replication state to ``follow_hooks``."""
        if self.follow_hooks:
            state = self.replication()
            for hook in self.follow_hooks:
                hook(state)

    def _sync(self) -> None:
        self._index.sync()

    def _sync_on_read(self) -> bool:
        """Whether a search must sync first: yes, unless a follower listening to the
        database keeps the index caught up."""
        return self._follower is None or not self._follower.listening

    # -- maintenance -----------------------------------------------------------------------

    def rebuild(self, factory: str | None = None) -> None:
        """Re-create the index from the stored vectors (training it if enough exist).

        Args:
            factory: a new factory string for the catalog, or ``None`` to keep its own.

        Raises:
            InvalidArgumentError: invalid factory.
            CatalogError: training failed.
        """
        self._check()
        self._index.rebuild(check_factory(factory, self.dim) if factory is not None else None)
        self.factory = self._index.factory

    def train(self) -> None:
        """Train the catalog's IVF/PQ factory now on the stored vectors, however few (faiss
        still needs one per centroid), and rebuild; nothing to do for other factories.

        Raises:
            CatalogError: too few vectors for faiss.
        """
        self._check()
        if train_size(self.factory, self.dim):
            self._index.rebuild(force_train=True)

    def verify(self) -> dict[str, Any]:
        """Compare the index with the database (after a sync).

        Returns:
            ``{"products", "indexed", "missing", "extra", "consistent"}``: counts, the
            product seqs stored but not indexed and indexed but not stored (empty in a
            healthy catalog), and whether both are empty.
        """
        self._check()
        indexed = self._index.ids()
        _, stored = self._store.snapshot()
        missing = np.setdiff1d(stored, indexed).tolist()
        extra = np.setdiff1d(indexed, stored).tolist()
        return {
            "products": len(stored),
            "indexed": len(indexed),
            "missing": missing,
            "extra": extra,
            "consistent": not missing and not extra,
        }

    def info(self) -> dict[str, Any]:
        """Settings and sizes, JSON-ready."""
        self._check()
        index_file = self.path / INDEX_NAME
        sizes = self._store.sizes()
        if index_file.exists():
            sizes[INDEX_NAME] = index_file.stat().st_size
        return {
            "path": self.location,
            "backend": "postgresql" if self.database else "sqlite",
            "uuid": self.uuid,
            "products": len(self),
            "dim": self.dim,
            "index": self._index.info(),
            "embedder": {"fingerprint": self._fingerprint[:16], **self.embedder.spec.to_dict()},
            "matcher": self.matcher.name if self.matcher is not None else None,
            "bytes": sizes,
            **({"index_cache": str(self.path)} if self.database else {}),
            "replication": self.replication(),
        }

    def replication(self) -> dict[str, Any]:
        """How far this process's index is behind the database (see
        :meth:`~index.synced_index.SyncedIndex.lag`), and whether a follower keeps it
        caught up in the background."""
        self._check()
        return {**self._index.lag(), "follower": self._follower is not None}

    def __len__(self) -> int:
        self._check()
        return self._store.count()

    def __contains__(self, product_id: object) -> bool:
        self._check()
        return isinstance(product_id, str) and bool(self._store.existing([product_id]))

    def close(self) -> None:
        """Save the index if it changed and close the database (idempotent)."""
        if self._closed or os.getpid() != self._pid:
            return
        if self._follower is not None:
            self._follower.stop()
        self._index.close()
        self._closed = True
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _product_ids(self, seqs: np.ndarray, *, remembered: bool) -> dict[int, str]:
        """``seq -> product_id`` of the seqs still stored. A replica kept caught up by its
        follower remembers the names it has read (a seq is never reused), so a search
        costs no database round trip; otherwise the database answers, which also drops
        products deleted since the index was synced."""
        if not remembered:
            return self._store.product_ids(seqs)
        known = self._names
        missing = [int(s) for s in seqs if int(s) not in known]
        if missing:
            if len(known) + len(missing) > NAME_CACHE_SIZE:
                known.clear()
            known.update(self._store.product_ids(missing))
        return {int(s): known[int(s)] for s in seqs if int(s) in known}

    def _check(self) -> None:
        if self._closed:
            raise CatalogError(f"catalog {self.location} is closed")
        if os.getpid() != self._pid:
            raise CatalogError(
                f"catalog {self.location} was opened in another process (fork); "
                "open it in each worker"
            )
