"""The product catalog: a SQLite database (the truth) and a FAISS index (derived from it).

A catalog is a folder::

    catalog.db (+ -wal, -shm)   products, vectors, images, cached template features, the
                                embedder checkpoint and a change log (:mod:`index.store`)
    index.faiss                 the FAISS index and the last change it reflects
                                (:mod:`index.faiss_index`)

**Durability.** ``add`` validates and embeds first, then writes the product, its vector,
its image and an ``add`` entry of the change log in one SQLite transaction (WAL,
``synchronous=FULL``); when ``add`` returns, the product survives ``kill -9`` or a power
cut. The FAISS index is updated after the commit and saved (atomically: temporary file,
fsync, rename) on :meth:`Catalog.close`, after :meth:`Catalog.rebuild`/training and every
``autosave_every`` changes. Opening a catalog loads ``index.faiss`` when it is intact and
belongs to this database, then *reconciles* it: ids in the index but not the database are
removed, ids in the database but not the index are added from the stored vectors. A
missing, stale, corrupt or foreign index file is rebuilt from the database. So after any
crash the catalog opens consistent, with no manual repair.

**Concurrency.** Within a process, a lock serialises FAISS mutations and searches; each
thread has its own SQLite connection. Across processes (gunicorn workers sharing the
folder), every search and write first applies the change log entries written since the
last one it applied (one indexed query), so each process sees the others' adds and
deletes. A ``rebuild`` (new factory, training, re-embedding) logs a ``reindex`` entry after
saving its index file; other processes then load that file.

**Training.** An ``IVF…``/``PQ…`` factory is trained once enough vectors are stored
(:func:`index.faiss_index.train_size`, or ``min_train_size``); until then searches are
exact over all stored vectors. ``train()`` trains now.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid as uuid_lib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from index.embedder_store import (
    embedder_blobs,
    embedder_settings,
    reembed_products,
    stored_embedder,
)
from index.faiss_index import check_factory, check_search_params, train_size
from index.products import (
    STORED_LIMITS,
    Hit,
    Product,
    box_from_json,
    box_to_json,
    crop,
    encode_png,
    load_product_image,
    validate_metadata,
    validate_product_id,
)
from index.store import DB_NAME, CatalogStore, NewProduct, ProductRow, StaleEmbedderError
from index.synced_index import INDEX_NAME, SyncedIndex
from index.templates import TemplateCache, features_to_bytes
from matcher.checks import check_int
from matcher.embedder import (
    Embedder,
    EmbedderSpec,
    default_embedder,
    embedder_fingerprint,
)
from matcher.errors import (
    CatalogError,
    DuplicateProductError,
    InvalidArgumentError,
)
from matcher.images import DEFAULT_LIMITS, Box, ImageLike, ImageLimits, load_image
from matcher.siamese_matcher import ReferenceFeatures, SiameseMatcher
from matcher.structures import Reference

logger = logging.getLogger(__name__)

FORMAT = "siammatch-catalog"
FORMAT_VERSION = "1"
#: Largest ``k`` and page size accepted.
MAX_K = 1000
MAX_PAGE = 1000
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


Item = tuple[str, ImageLike, dict | None, Box | None]


class Catalog:
    """A product catalog in a folder (see the module docstring).

    Args:
        path: the catalog folder (created with ``create``).
        embedder: the embedder; ``None`` uses the catalog's own (a new catalog gets the
            shipped default, :func:`~matcher.embedder.default_embedder`). A catalog made
            with another embedder refuses it unless ``replace_embedder``.
        factory: FAISS ``index_factory`` string for a new catalog (``"Flat"``,
            ``"IVF1024,Flat"``, ``"HNSW32"``, ``"IVF1024,PQ32"`` ...). An existing catalog keeps
            its own; change it with :meth:`rebuild`.
        matcher: a matcher whose template features are cached per product for verification.
        create: create the catalog if the folder holds none.
        search_params: ``faiss.ParameterSpace`` overrides, e.g. ``"nprobe=64"``.
        min_train_size: vectors needed before an IVF/PQ factory is trained (default
            :func:`~index.faiss_index.train_size`).
        replace_embedder: re-embed every product with ``embedder`` if it differs from the
            catalog's.
        autosave_every: save the index after this many applied changes.

    Raises:
        CatalogError: no catalog (and not ``create``), an unreadable database, or a
            different embedder.
        InvalidArgumentError: an invalid factory or search parameters.
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

    # -- writing ---------------------------------------------------------------------------

    def add(
        self,
        product_id: str,
        image: ImageLike,
        *,
        metadata: dict[str, Any] | None = None,
        box: Box | None = None,
        limits: ImageLimits = DEFAULT_LIMITS,
    ) -> Product:
        """Add a product. Everything is checked before anything is written.

        Args:
            product_id: the new id (see :data:`index.products.PRODUCT_ID_PATTERN`).
            image: reference image: numpy RGB, PIL image, path or encoded bytes.
            metadata: JSON object stored with the product.
            box: the product's ``(x0, y0, x1, y1)`` in ``image``; ``None``: its foreground.
            limits: the images accepted (the service passes its configured ones).

        Returns:
            The stored product.

        Raises:
            InvalidArgumentError: bad id or metadata.
            InvalidImageError: unreadable image.
            InvalidBoxError: bad box.
            DuplicateProductError: the id exists.
        """
        self._check()
        pid = validate_product_id(product_id)
        text = validate_metadata(metadata)
        if pid in self._store.existing([pid]):
            raise DuplicateProductError(f"product {pid!r} is already in the catalog")
        return self._add_checked([(pid, text)], [(image, box)], limits)[0]

    def add_many(
        self,
        items: Iterable[Item],
        *,
        progress: bool = False,
        chunk_size: int = 64,
        limits: ImageLimits = DEFAULT_LIMITS,
    ) -> int:
        """Add products ``(product_id, image, metadata, box)``.

        Every item (ids, duplicates, metadata, images, boxes; images within ``limits``) is
        checked before anything is written; then each chunk of ``chunk_size`` products is
        embedded and committed in one transaction.

        Returns:
            The number of products added.

        Raises:
            The errors of :meth:`add`, naming the item.
        """
        from tqdm import tqdm

        self._check()
        chunk_size = check_int("chunk_size", chunk_size, 1, 100_000)
        items = list(items)
        checked = []
        for i, item in enumerate(items):
            if not isinstance(item, tuple | list) or len(item) != 4:
                raise InvalidArgumentError(
                    f"item {i}: expected a (product_id, image, metadata, box) tuple"
                )
            checked.append((validate_product_id(item[0]), validate_metadata(item[2])))
        ids = [pid for pid, _ in checked]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(pid for pid in ids if pid in seen or seen.add(pid))
            raise InvalidArgumentError(f"product id {dup!r} appears more than once")
        taken = self._store.existing(ids)
        if taken:
            raise DuplicateProductError(f"product {min(taken)!r} is already in the catalog")
        for pid, image, _, box in tqdm(items, desc="checking", unit="img", disable=not progress):
            load_product_image(pid, image, box, limits=limits)
        with tqdm(total=len(items), desc="adding", unit="img", disable=not progress) as bar:
            for start in range(0, len(items), chunk_size):
                part = items[start : start + chunk_size]
                sources = [(it[1], it[3]) for it in part]
                self._add_checked(checked[start : start + chunk_size], sources, limits)
                bar.update(len(part))
        return len(items)

    def _add_checked(
        self,
        checked: list[tuple[str, str]],
        sources: list[tuple[ImageLike, Box | None]],
        limits: ImageLimits,
    ) -> list[Product]:
        loaded = [
            load_product_image(pid, image, box, limits=limits)
            for (pid, _), (image, box) in zip(checked, sources, strict=True)
        ]
        for _attempt in range(3):
            embedder, fingerprint = self.embedder, self._fingerprint
            vectors = embedder.embed([crop(rgb, region) for rgb, _, region in loaded])
            now = time.time()
            items = []
            for (pid, text), (rgb, box, region), vector in zip(
                checked, loaded, vectors, strict=True
            ):
                template = None
                if self.matcher is not None:
                    reference = Reference.from_image(rgb, region, id=pid, limits=STORED_LIMITS)
                    feats = self.matcher.encode_reference(reference)
                    template = (self._templates.key(self.matcher), features_to_bytes(feats))
                items.append(
                    NewProduct(
                        product_id=pid,
                        metadata=text,
                        box=box_to_json(box),
                        created_at=now,
                        height=rgb.shape[0],
                        width=rgb.shape[1],
                        png=encode_png(rgb),
                        vector=vector,
                        template=template,
                    )
                )
            try:
                self._store.insert(items, embedder=fingerprint)
            except StaleEmbedderError:
                self._sync()  # another process replaced the embedder: reload it, embed again
                continue
            self._sync()
            return [
                Product(
                    product_id=it.product_id,
                    metadata=json.loads(it.metadata),
                    box=box,
                    created_at=now,
                    image_png=it.png,
                    image_size=(it.height, it.width),
                )
                for it, (_, box, _) in zip(items, loaded, strict=True)
            ]
        raise CatalogError("the catalog's embedder keeps changing; try again")

    def delete(self, product_id: str) -> None:
        """Remove a product.

        Raises:
            ProductNotFoundError: unknown id.
        """
        self._check()
        self._store.delete(_as_id(product_id))
        self._sync()

    # -- reading ---------------------------------------------------------------------------

    def get(self, product_id: str) -> Product:
        """The stored product.

        Raises:
            ProductNotFoundError: unknown id.
        """
        self._check()
        return _product(self._store.get(_as_id(product_id)))

    def list(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> tuple[list[Product], str | None]:
        """One page of products in id order.

        Args:
            cursor: ``None`` for the first page, else the cursor the previous page returned.
            limit: page size, 1 to :data:`MAX_PAGE`.

        Returns:
            The products and the next page's cursor (``None`` after the last page). Pages
            are stable: products added or deleted meanwhile do not shift other products.

        Raises:
            InvalidArgumentError: bad ``cursor`` or ``limit``.
        """
        self._check()
        limit = check_int("limit", limit, 1, MAX_PAGE)
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidArgumentError(f"cursor must be a string, got {type(cursor).__name__}")
        rows = self._store.page(cursor, limit + 1)
        products = [_product(r) for r in rows[:limit]]
        return products, (products[-1].product_id if len(rows) > limit else None)

    def search(self, image: ImageLike, *, k: int = 10) -> list[Hit]:
        """The ``k`` products whose vectors are nearest the image's (whole image embedded).

        Raises:
            InvalidImageError: unreadable image.
            InvalidArgumentError: ``k`` out of range.
        """
        self._check()
        check_int("k", k, 1, MAX_K)
        return self.search_vectors(self.embed([load_image(image)]), k=k)[0]

    def embed(self, images: list[ImageLike]) -> np.ndarray:
        """Embed query images with the catalog's current embedder (after a sync, so a
        replacement by another process is picked up): ``(N, dim)`` float32.

        Raises:
            InvalidImageError: unreadable image.
        """
        self._check()
        self._sync()
        return self.embedder.embed(images)

    def search_vectors(self, xq: np.ndarray, *, k: int) -> list[list[Hit]]:
        """Top-``k`` products for each query vector.

        Args:
            xq: ``(nq, dim)`` (or ``(dim,)``) float, unit norm for cosine scores.
            k: results per query, 1 to :data:`MAX_K`.

        Returns:
            Per query, up to ``k`` hits, best first.

        Raises:
            InvalidArgumentError: wrong shape or ``k``.
        """
        self._check()
        k = check_int("k", k, 1, MAX_K)
        xq = np.asarray(xq, dtype=np.float32)
        if xq.ndim == 1:
            xq = xq[None]
        if xq.ndim != 2 or not np.all(np.isfinite(xq)):
            raise InvalidArgumentError(
                f"query vectors must be finite (nq, {self.dim}), got {xq.shape}"
            )
        D, I = self._index.search(xq, k)  # noqa: E741 - faiss naming
        names = self._store.product_ids(np.unique(I[I >= 0]))
        return [
            [
                Hit(names[int(i)], float(d))
                for d, i in zip(drow, irow, strict=True)
                if int(i) in names
            ]
            for drow, irow in zip(D, I, strict=True)
        ]

    def template_features(
        self, product_id: str, *, matcher: SiameseMatcher | None = None
    ) -> ReferenceFeatures | None:
        """The product's template features for ``matcher`` (default: the catalog's).

        Cached in the database for the catalog's matcher (computed at ``add``, or on first
        use), kept in memory for others.

        Returns:
            The features, or ``None`` when there is no matcher.

        Raises:
            ProductNotFoundError: unknown id.
        """
        self._check()
        matcher = matcher or self.matcher
        if matcher is None:
            return None
        persist = matcher is self.matcher
        return self._templates.features(_as_id(product_id), matcher, persist=persist)

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

    def __enter__(self) -> Catalog:
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


# -- helpers -------------------------------------------------------------------------------


def _product(row: ProductRow) -> Product:
    assert row.png is not None
    return Product(
        product_id=row.product_id,
        metadata=json.loads(row.metadata),
        box=box_from_json(row.box),
        created_at=row.created_at,
        image_png=row.png,
        image_size=(row.height, row.width),
    )


def _as_id(product_id: object) -> str:
    if not isinstance(product_id, str):
        raise InvalidArgumentError(f"product id must be a string, got {type(product_id).__name__}")
    return product_id
