"""What a catalog database does, whichever engine holds it.

A catalog's truth lives in a database: the embedded SQLite file of a catalog folder
(:class:`index.store.CatalogStore`) or a PostgreSQL database shared by many machines
(:class:`index.pg_store.PostgresStore`). Both implement :class:`CatalogBackend`: settings
and blobs, products with their vectors, images and cached template features, and the
append-only change log that every process's FAISS index follows
(:class:`index.synced_index.SyncedIndex`). Every write is one transaction that also appends
to the log; ``change_seq`` only grows, and a reader never sees a later entry before an
earlier one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from index.change_log import Change
from index.location import is_database_url
from index.product_rows import NewProduct, ProductRow
from matcher.errors import DuplicateProductError

if TYPE_CHECKING:
    from index.image_store import ImageStore

logger = logging.getLogger(__name__)


class CatalogBackend(Protocol):
    """The catalog database's interface (see the module docstring).

    Attributes:
        location: where the database is, for messages (a PostgreSQL URL without its
            password).
    """

    location: str

    # settings and blobs
    def meta(self) -> dict[str, str]: ...
    def initialise(self, values: dict[str, str], blobs: dict[str, bytes]) -> bool: ...
    def set_meta(self, values: dict[str, str], *, reindex: bool = False) -> int | None: ...
    def replace_embedding(
        self, values: dict[str, str], blobs: dict[str, bytes], vectors: dict[int, np.ndarray]
    ) -> int | np.ndarray: ...
    def blob(self, name: str) -> bytes | None: ...

    # products
    def insert(self, items: list[NewProduct], *, embedder: str) -> list[int]: ...
    def delete(self, product_id: str) -> int: ...
    def get(self, product_id: str) -> ProductRow: ...
    def page(self, after: str | None, limit: int) -> list[ProductRow]: ...
    def existing(self, product_ids: Iterable[str]) -> set[str]: ...
    def count(self) -> int: ...
    def product_ids(self, seqs: Iterable[int]) -> dict[int, str]: ...
    def image_rows(
        self, seqs: np.ndarray | None = None, *, chunk: int = 256
    ) -> Iterator[list[ProductRow]]: ...
    def template(self, product_id: str) -> tuple[int, str | None, bytes | None]: ...
    def template_keys(self, product_ids: Iterable[str]) -> dict[str, tuple[int, str | None]]: ...
    def template_blobs(self, seqs: Iterable[int], key: str) -> dict[int, bytes]: ...
    def set_template(self, seq: int, key: str, features: bytes) -> None: ...

    # the change log
    def last_change(self) -> int: ...
    def pending_changes(self, change_seq: int) -> tuple[int, float | None]: ...
    def changes_since(self, change_seq: int, *, limit: int = 100_000) -> list[Change]: ...
    def snapshot(self) -> tuple[int, np.ndarray]: ...
    def stored_vectors(
        self, seqs: np.ndarray | None = None, *, dim: int, chunk: int = 65536
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    # the database itself
    def sizes(self) -> dict[str, int]: ...
    def close(self) -> None: ...


def duplicate_error(store: CatalogBackend, items: list[NewProduct]) -> DuplicateProductError:
    """The error of an insert refused by the unique product ids: it names a taken id."""
    taken = sorted(store.existing([i.product_id for i in items]))
    return DuplicateProductError(
        f"product {taken[0] if taken else '?'!r} is already in the catalog"
    )


def open_store(
    location: str | os.PathLike, *, create: bool, image_store: ImageStore | None
) -> CatalogBackend:
    """The catalog database at ``location``: a folder's SQLite file (the folder is made) or
    a PostgreSQL database (``image_store``: where its new reference images go). The caller
    has checked the location (:func:`index.location.catalog_location_problem`).

    Raises:
        CatalogError: no catalog there (without ``create``), or an unusable database.
    """
    from index.pg_store import PostgresStore
    from index.store import CatalogStore

    if is_database_url(location):
        return PostgresStore(os.fspath(location), create=create, image_store=image_store)
    folder = Path(location)
    folder.mkdir(parents=True, exist_ok=True)
    return CatalogStore(folder, create=create)
