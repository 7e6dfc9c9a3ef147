"""The product catalog: a database (the truth) and a FAISS index (derived from it).

The database is the embedded SQLite file of a catalog folder, or a PostgreSQL database
shared by several machines (``postgresql://`` URL; :mod:`index.pg_store`, whose FAISS
index lives in a local cache folder and is kept caught up by a follower thread,
:mod:`index.replica`). The semantics below hold for both. A catalog folder is::

    catalog.db (+ -wal, -shm)   products, vectors, images, cached template features, the
                                embedder checkpoint and a change log (:mod:`index.store`)
    index.faiss                 the FAISS index and the last change it reflects
                                (:mod:`index.faiss_index`, :mod:`index.index_file`)

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
(:func:`index.faiss_factory.train_size`, or ``min_train_size``); until then searches are
exact over all stored vectors. ``train()`` trains now.

**Modules.** :class:`Catalog` is a :class:`~index.catalog_folder.CatalogFolder` (opening,
settings, embedder, index maintenance, closing) with the product operations; adding goes
through :mod:`index.ingest`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from index.catalog_folder import CatalogFolder
from index.ingest import Item, added_products, check_items, new_products
from index.product_rows import ProductRow
from index.products import (
    Hit,
    Product,
    box_from_json,
    load_product_image,
    validate_metadata,
    validate_product_id,
)
from index.store import StaleEmbedderError
from matcher.checks import check_int
from matcher.errors import (
    CatalogError,
    DuplicateProductError,
    InvalidArgumentError,
)
from matcher.images import DEFAULT_LIMITS, Box, ImageLike, ImageLimits, load_image
from matcher.siamese_matcher import ReferenceFeatures, SiameseMatcher

logger = logging.getLogger(__name__)

#: Largest ``k`` and page size accepted.
MAX_K = 1000
MAX_PAGE = 1000


class Catalog(CatalogFolder):
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
            :func:`~index.faiss_factory.train_size`).
        replace_embedder: re-embed every product with ``embedder`` if it differs from the
            catalog's.
        autosave_every: save the index after this many applied changes.
        index_cache: for a database catalog, the folder of this machine's FAISS caches
            (one sub-folder per catalog uuid; default ``$SIAMMATCH_INDEX_CACHE``, else
            ``var/index-cache``).
        follow: run a follower thread that keeps the index caught up (LISTEN/NOTIFY on
            PostgreSQL, polling on SQLite) and trains or compacts it in the background;
            ``None``: for database catalogs only.
        image_store: for a database catalog, a ``file://`` folder (shared by the machines,
            e.g. a mounted bucket) that receives new reference images instead of the
            database (:mod:`index.image_store`; default ``$SIAMMATCH_IMAGE_STORE``).

    Raises:
        CatalogError: no catalog (and not ``create``), an unreadable or unreachable
            database, missing privileges, a schema from a newer version, or a different
            embedder.
        InvalidArgumentError: an invalid factory or search parameters.
    """

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
        checked = check_items(items, self._store)
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
            items = new_products(
                checked, loaded, embedder=embedder, matcher=self.matcher, templates=self._templates
            )
            try:
                self._store.insert(items, embedder=fingerprint)
            except StaleEmbedderError:
                self._sync()  # another process replaced the embedder: reload it, embed again
                continue
            self._sync()
            return added_products(items, loaded)
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
        return self.search_images([load_image(image)], k=k)[0]

    def search_images(
        self, images: list[ImageLike], *, k: int, timings: dict[str, float] | None = None
    ) -> list[list[Hit]]:
        """Embed ``images`` and return each one's top-``k`` products. When another process
        replaces the catalog's embedder between the two steps (the follower switches this
        process's index meanwhile), the images are embedded again with the new one.
        ``timings``, if given, gets the seconds spent embedding and searching added to its
        ``"embed"`` and ``"retrieve"`` entries.

        Raises:
            InvalidImageError: unreadable image.
            InvalidArgumentError: ``k`` out of range.
            CatalogError: the embedder kept changing.
        """
        laps = timings if timings is not None else {}
        for _attempt in range(3):
            start = time.perf_counter()
            xq = self.embed(images)
            searched = time.perf_counter()
            laps["embed"] = laps.get("embed", 0.0) + searched - start
            if xq.shape[1] == self._index.dim:
                try:
                    return self._search_vectors(xq, k=k, synced=True)  # embed synced
                except InvalidArgumentError:
                    if xq.shape[1] == self._index.dim:
                        raise  # not a switch of embedders
                finally:
                    laps["retrieve"] = laps.get("retrieve", 0.0) + time.perf_counter() - searched
        raise CatalogError("the catalog's embedder keeps changing; try again")

    def embed(self, images: list[ImageLike]) -> np.ndarray:
        """Embed query images with the catalog's current embedder (after a sync, or with a
        listening follower, so a replacement by another process is picked up):
        ``(N, dim)`` float32.

        Raises:
            InvalidImageError: unreadable image.
        """
        self._check()
        if self._sync_on_read():
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
        return self._search_vectors(xq, k=k, synced=False)

    def _search_vectors(self, xq: np.ndarray, *, k: int, synced: bool) -> list[list[Hit]]:
        """:meth:`search_vectors`; ``synced``: the caller synced just before (no second
        database round trip)."""
        self._check()
        k = check_int("k", k, 1, MAX_K)
        xq = np.asarray(xq, dtype=np.float32)
        if xq.ndim == 1:
            xq = xq[None]
        if xq.ndim != 2 or not np.all(np.isfinite(xq)):
            raise InvalidArgumentError(
                f"query vectors must be finite (nq, {self.dim}), got {xq.shape}"
            )
        fresh = self._sync_on_read()
        D, I = self._index.search(xq, k, sync=fresh and not synced)  # noqa: E741 - faiss naming
        names = self._product_ids(np.unique(I[I >= 0]), remembered=not fresh)
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

    def template_features_many(
        self, product_ids: list[str], *, matcher: SiameseMatcher
    ) -> dict[str, ReferenceFeatures]:
        """:meth:`template_features` of several products, in one or two database queries:
        ``product_id -> features`` for the ids in the catalog (unknown ids left out)."""
        self._check()
        ids = [_as_id(pid) for pid in product_ids]
        return self._templates.features_many(ids, matcher, persist=matcher is self.matcher)


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
