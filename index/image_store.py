"""Reference images kept outside the catalog database, for large catalogs.

By default a catalog stores each reference image's PNG bytes in its database. A large
PostgreSQL catalog can keep them in an object store instead: give ``image_store`` (or
``SIAMMATCH_IMAGE_STORE``) as a ``file://`` URL of a folder every machine mounts — a
shared volume, or a bucket mounted with s3fs / gcsfuse — and each new product's PNG is
written there, content-addressed (``<root>/ab/abcdef....png``, written to a temporary file,
fsynced and renamed before the database transaction), while the database keeps its URI.
Readers need no setting: a stored URI names its file. Identical images share one file, so
deleting a product leaves the file in place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from matcher.errors import CatalogError

logger = logging.getLogger(__name__)

IMAGE_STORE_ENV = "SIAMMATCH_IMAGE_STORE"


class ImageStore:
    """A folder of content-addressed PNG files (see the module docstring).

    Args:
        url: ``file:///absolute/folder``.

    Raises:
        CatalogError: another scheme, or a folder that cannot be created.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = file_url_path(url)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"image store {url}: {exc.strerror or exc}") from None

    def put(self, png: bytes) -> str:
        """Store ``png`` (once per content); returns its ``file://`` URI."""
        digest = hashlib.sha256(png).hexdigest()
        path = self.root / digest[:2] / f"{digest}.png"
        if not path.exists():
            try:
                path.parent.mkdir(exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(png)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except OSError as exc:
                raise CatalogError(f"image store {self.url}: {exc.strerror or exc}") from None
        return path.as_uri()


def file_url_path(url: str) -> Path:
    """The absolute path of a ``file://`` URL.

    Raises:
        CatalogError: not a ``file://`` URL of an absolute path.
    """
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path:
        raise CatalogError(
            f"image store {url!r} is not a file:// URL of a folder (mount an object store "
            "with s3fs or gcsfuse and give its mount point as file:///path)"
        )
    return Path(unquote(parts.path))


def read_image(uri: str) -> bytes:
    """The bytes of a stored image URI.

    Raises:
        CatalogError: the file is missing or unreadable.
    """
    path = file_url_path(uri)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"reference image {uri}: {exc.strerror or exc}") from None


def image_store_from(given: str | None) -> ImageStore | None:
    """The image store named by ``given``, else by ``$SIAMMATCH_IMAGE_STORE``, else none."""
    url = given or os.environ.get(IMAGE_STORE_ENV)
    return ImageStore(url) if url else None
