"""Where a catalog lives: a folder (embedded SQLite) or a PostgreSQL URL.

:func:`is_database_url` tells the two apart, :func:`redact_url` drops a password before a
URL reaches a message or a log, and :func:`catalog_location_problem` says why a location
cannot hold a catalog (a URL of another scheme, a file, a folder of other files, or —
without ``create`` — a folder with no catalog).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

#: The catalog database file of a catalog folder.
DB_NAME = "catalog.db"
#: Where a process keeps the FAISS index files of database catalogs (one folder per
#: catalog uuid) unless told otherwise (argument, or :data:`INDEX_CACHE_ENV`).
DEFAULT_INDEX_CACHE = "var/index-cache"
INDEX_CACHE_ENV = "SIAMMATCH_INDEX_CACHE"
#: URL schemes of a PostgreSQL catalog.
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def url_scheme(text: str) -> str | None:
    """The scheme of ``text`` if it looks like a URL (``scheme:...``), else ``None``.

    A Windows drive letter (``C:\\...``) is not a scheme.
    """
    match = _URL.match(text)
    if match is None or len(match.group(0)) == 2:
        return None
    return match.group(0)[:-1].lower()


def is_database_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a PostgreSQL catalog."""
    return url_scheme(os.fspath(location)) in POSTGRES_SCHEMES


def redact_url(url: str) -> str:
    """``url`` without its password (``postgresql://user:***@host/db``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def index_cache_root(given: str | os.PathLike | None = None) -> Path:
    """The folder of this machine's FAISS caches of database catalogs: ``given``, else
    ``$SIAMMATCH_INDEX_CACHE``, else :data:`DEFAULT_INDEX_CACHE`."""
    return Path(given or os.environ.get(INDEX_CACHE_ENV) or DEFAULT_INDEX_CACHE)


def catalog_location_problem(location: str | os.PathLike, *, create: bool = True) -> str | None:
    """Why ``location`` cannot hold a catalog, or ``None`` when it can.

    A ``postgresql://`` URL is judged when it is opened (reachable, permitted, a schema this
    version knows); any other URL is refused. A path must be a catalog folder, an empty
    folder or a new path (with ``create``).
    """
    text = os.fspath(location)
    scheme = url_scheme(text)
    if scheme in POSTGRES_SCHEMES:
        return None
    if scheme is not None:
        return (
            f"{redact_url(text)!r} is a {scheme}: URL; a catalog is a folder or a "
            "postgresql:// database URL"
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
