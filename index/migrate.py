"""Copying a catalog from one store to another (``siammatch catalog migrate``).

:func:`copy_catalog` copies an embedded catalog folder into a PostgreSQL database (or any
catalog location into an empty one): the settings and the embedder checkpoint, then every
product with its metadata, box, reference image, vector and cached template features, in
transactions of ``chunk`` products. The copy is a new catalog (its own uuid, so FAISS
caches of the two never mix) marked ``migration: incomplete`` until the last product is
in: such a catalog refuses to open, and running the same command again resumes it,
skipping the products already copied. Nothing is ever embedded again: the vectors are the
source's, byte for byte.
"""

from __future__ import annotations

import logging
import os
import uuid as uuid_lib
from dataclasses import dataclass

from index.backend import CatalogBackend, open_store
from index.image_store import image_store_from
from index.location import catalog_location_problem, redact_url
from index.product_rows import NewProduct
from matcher.errors import CatalogError, InvalidArgumentError

logger = logging.getLogger(__name__)

#: ``meta`` key of a copy: ``incomplete`` while :func:`copy_catalog` runs, then ``complete``.
MIGRATION_KEY = "migration"
#: ``meta`` key naming the uuid of the catalog a copy was made from.
SOURCE_KEY = "migrated_from"
#: Settings not copied (the copy has its own identity).
_OWN_KEYS = ("uuid", "created_at", MIGRATION_KEY, SOURCE_KEY)


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_catalog` did.

    Attributes:
        products: products in the copy.
        copied: products this run copied (fewer on a resumed run).
        uuid: the copy's uuid.
    """

    products: int
    copied: int
    uuid: str


def copy_catalog(
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    chunk: int = 256,
    progress: bool = False,
) -> CopyReport:
    """Copy the catalog at ``source`` into the empty location ``target``.

    Args:
        source: a catalog folder or database URL.
        target: a new or empty folder, or a database holding no catalog (or the unfinished
            copy of this same source, which is then completed).
        chunk: products per transaction.
        progress: show a progress bar.

    Raises:
        CatalogError: no catalog at ``source``; ``target`` holds another catalog.
        InvalidArgumentError: ``source`` and ``target`` are the same place.
    """
    from tqdm import tqdm

    if os.fspath(source) == os.fspath(target):
        raise InvalidArgumentError("--from and --to name the same catalog")
    for location, create in ((source, False), (target, True)):
        problem = catalog_location_problem(location, create=create)
        if problem is not None:
            raise CatalogError(problem)
    src = open_store(source, create=False, image_store=None)
    try:
        meta = src.meta()
        if "uuid" not in meta:
            raise CatalogError(f"no catalog at {redact_url(os.fspath(source))!r}")
        if meta.get(MIGRATION_KEY) == "incomplete":
            raise CatalogError(f"{src.location} is itself an unfinished copy; finish it first")
        # new images go to $SIAMMATCH_IMAGE_STORE when it is set
        dst = open_store(target, create=True, image_store=image_store_from(None))
        try:
            own_uuid = _start(dst, meta, _blobs(src))
            copied = 0
            bar = tqdm(total=src.count(), desc="copying", unit="product", disable=not progress)
            with bar:
                for rows in src.image_rows(chunk=chunk):
                    done = dst.existing([r.product_id for r in rows])
                    todo = [r for r in rows if r.product_id not in done]
                    if todo:
                        items = _new_products(src, todo, dim=int(meta["dim"]))
                        dst.insert(items, embedder=meta["embedder_fingerprint"])
                        copied += len(items)
                    bar.update(len(rows))
            dst.set_meta({MIGRATION_KEY: "complete"})
            report = CopyReport(products=dst.count(), copied=copied, uuid=own_uuid)
        finally:
            dst.close()
    finally:
        src.close()
    logger.info("copied %d products (%d in all)", report.copied, report.products)
    return report


def _blobs(store: CatalogBackend) -> dict[str, bytes]:
    from index.embedder_store import EMBEDDER_BLOB

    data = store.blob(EMBEDDER_BLOB)
    if data is None:
        raise CatalogError(f"catalog {store.location} has no stored embedder")
    return {EMBEDDER_BLOB: data}


def _start(dst: CatalogBackend, meta: dict[str, str], blobs: dict[str, bytes]) -> str:
    """Create the copy's settings, or check that ``dst`` is an unfinished copy of it."""
    values = {k: v for k, v in meta.items() if k not in _OWN_KEYS}
    own_uuid = uuid_lib.uuid4().hex
    values.update(
        uuid=own_uuid,
        created_at=meta.get("created_at", ""),
        **{MIGRATION_KEY: "incomplete", SOURCE_KEY: meta["uuid"]},
    )
    if dst.initialise(values, blobs):
        return own_uuid
    existing = dst.meta()
    if existing.get(SOURCE_KEY) == meta["uuid"] and existing.get(MIGRATION_KEY) == "incomplete":
        logger.info("resuming the copy into %s", dst.location)
        return existing["uuid"]
    raise CatalogError(
        f"{dst.location} already holds a catalog; migrate into an empty folder or database"
    )


def _new_products(store: CatalogBackend, rows: list, *, dim: int) -> list[NewProduct]:
    import numpy as np

    seqs = np.array([r.seq for r in rows], np.int64)
    vectors: dict[int, np.ndarray] = {}
    for ids, xb in store.stored_vectors(seqs, dim=dim):
        vectors.update(zip(ids.tolist(), xb, strict=True))
    items = []
    for row in rows:
        _, key, features = store.template(row.product_id)
        items.append(
            NewProduct(
                product_id=row.product_id,
                metadata=row.metadata,
                box=row.box,
                created_at=row.created_at,
                height=row.height,
                width=row.width,
                png=row.png,
                vector=vectors[row.seq],
                template=(key, features) if key is not None and features is not None else None,
            )
        )
    return items
