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
import re
import time
import uuid as uuid_lib
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from index.change_log import snapshot
from index.embedder_store import (
    embedder_blobs,
    embedder_settings,
    reembed_products,
    stored_embedder,
)
from index.faiss_factory import check_factory, check_search_params, train_size
from index.store import DB_NAME, CatalogStore
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
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def catalog_location_problem(path: str | os.PathLike, *, create: bool = True) -> str | None:
    """Why ``path`` cannot hold a catalog, or ``None`` when it can: a URL (catalogs are
    folders; no database backend exists yet), a file, a folder of other files (creating a
    catalog there would mix it with them), or — without ``create`` — a folder with no
    catalog."""
    text = os.fspath(path)
    if _URL.match(text):
        scheme = text.split(":", 1)[0]
        return (
            f"{text!r} is a {scheme} URL, but a catalog is a folder "
            "(no database-backed catalog is supported yet)"
        )
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        return f"{text!r} is not a folder"
    if (folder / DB_NAME).exists():
        return None
    if not create:
        return f"no catalog at {text!r}"
    if folder.is_dir() and any(folder.iterdir()):
        return (
            f"{text!r} holds other files and no catalog ({DB_NAME}); give a catalog folder, "
            "an empty folder or a new path"
        )
    return None


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
    ) -> None:
        problem = catalog_location_problem(path, create=create)
        if problem is not None:
            raise CatalogError(problem)
        self.path = Path(path)
        is_new = not (self.path / DB_NAME).exists()
        if is_new:  # check before anything is written
            dim = embedder.dim if embedder is not None else EmbedderSpec().dim
            check_search_params(check_factory(factory, dim), dim, search_params)
        self.matcher = matcher
        self.search_params = search_params
        self._pid = os.getpid()
        self._closed = False
        self._reembedded: int | None = None
        self.path.mkdir(parents=True, exist_ok=True)
        self._store = CatalogStore(self.path, create=create)
        self._templates = TemplateCache(self._store, size=TEMPLATE_CACHE_SIZE)
        try:
            self._open(embedder, factory, create=create, replace_embedder=replace_embedder)
            self._index = SyncedIndex(
                self._store,
                self.path,
                search_params=search_params,
                min_train_size=min_train_size,
                autosave_every=autosave_every,
                on_reindex=self._on_reindex,
            )
        except BaseException:
            self._store.close()
            raise
        if self._reembedded is not None:
            self._index.adopt(self._reembedded)

    # -- setup -----------------------------------------------------------------------------

    def _open(
        self, embedder: Embedder | None, factory: str, *, create: bool, replace_embedder: bool
    ) -> None:
        meta = self._store.meta()
        if "uuid" not in meta:
            if not create:
                raise CatalogError(f"no catalog at {str(self.path)!r}")
            self._create(embedder or default_embedder(device=self._device), factory)
            meta = self._store.meta()
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise CatalogError(
                f"{self.path} holds a catalog of an unknown format "
                f"({meta.get('format')} {meta.get('version')})"
            )
        self._read_meta(meta)
        if factory != self.factory:
            logger.info(
                "catalog %s keeps its index %r, not %r (change it with rebuild)",
                self.path,
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
            logger.info("created catalog %s (index %s, %d-d)", self.path, factory, embedder.dim)

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
                f"catalog {self.path} was built with another embedder; open it without "
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
            logger.warning("catalog %s has a new embedder; switching to it", self.path)
            self.embedder = self._stored_embedder()

    def _sync(self) -> None:
        self._index.sync()

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
        _, stored = snapshot(self._store)
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
        files = [self.path / n for n in (DB_NAME, f"{DB_NAME}-wal", INDEX_NAME)]
        return {
            "path": str(self.path),
            "uuid": self.uuid,
            "products": len(self),
            "dim": self.dim,
            "index": self._index.info(),
            "embedder": {"fingerprint": self._fingerprint[:16], **self.embedder.spec.to_dict()},
            "matcher": self.matcher.name if self.matcher is not None else None,
            "bytes": {p.name: p.stat().st_size for p in files if p.exists()},
        }

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
        self._index.close()
        self._closed = True
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self) -> None:
        if self._closed:
            raise CatalogError(f"catalog {self.path} is closed")
        if os.getpid() != self._pid:
            raise CatalogError(
                f"catalog {self.path} was opened in another process (fork); open it in each worker"
            )
