"""The catalog's index file: its format, its atomic save and its checked load.

:func:`write_index_file` writes one file — magic, a JSON header (catalog uuid, factory,
dimension, the last database change the index reflects, a CRC of the payload) and
``faiss.serialize_index`` bytes — to a temporary file, fsyncs it and renames it into
place, so a reader sees the old file or the new one, never a mix. :func:`read_index_file`
refuses a missing, truncated, corrupt or foreign file with :class:`IndexFileError`;
:func:`remove_stale_temp_files` deletes the temporary files of writers that died.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from index.faiss_factory import extract_ivf
from matcher.files import atomic_write

logger = logging.getLogger(__name__)

MAGIC = b"SIAMIDX1"


class IndexFileError(Exception):
    """An index file is missing, corrupt or belongs to another catalog (internal: the
    catalog answers it by rebuilding from the database)."""


@dataclass(frozen=True)
class IndexHeader:
    """What an index file records about itself.

    Attributes:
        uuid: the catalog's uuid.
        factory: the factory string the catalog asked for.
        dim: vector length.
        exact: the index is the exact fallback (factory not trained yet).
        applied: last database ``change_seq`` the index reflects.
        vectors_version: the catalog's vectors version (bumped by re-embedding).
    """

    uuid: str
    factory: str
    dim: int
    exact: bool
    applied: int
    vectors_version: int


def write_index_file(
    path: Path,
    index: faiss.Index,
    *,
    uuid: str,
    factory: str,
    exact: bool,
    applied: int,
    vectors_version: int,
) -> int:
    """Write ``index`` and its header atomically; returns the file size in bytes."""
    payload = faiss.serialize_index(index)
    header = {
        "uuid": uuid,
        "factory": factory,
        "dim": int(index.d),
        "exact": exact,
        "applied": int(applied),
        "vectors_version": int(vectors_version),
        "payload_bytes": int(payload.nbytes),
        "payload_crc32": zlib.crc32(payload) & 0xFFFFFFFF,
    }
    head = json.dumps(header).encode()
    chunks = [MAGIC, struct.pack("<Q", len(head)), head, memoryview(payload)]
    atomic_write(path, lambda fh: fh.writelines(chunks))
    return len(MAGIC) + 8 + len(head) + int(payload.nbytes)


def read_index_file(path: Path) -> tuple[faiss.Index, IndexHeader]:
    """Read a file written by :func:`write_index_file`: the faiss index (an IVF index or
    an ``IndexIDMap2``) and its header.

    Raises:
        IndexFileError: missing, truncated, corrupt (CRC) or unreadable by faiss.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexFileError(f"cannot read {path}: {exc}") from None
    if data[: len(MAGIC)] != MAGIC or len(data) < len(MAGIC) + 8:
        raise IndexFileError(f"{path} is not a catalog index file")
    (head_len,) = struct.unpack("<Q", data[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    try:
        header = json.loads(data[start : start + head_len])
        payload = np.frombuffer(data, np.uint8, offset=start + head_len)
        if payload.nbytes != header["payload_bytes"]:
            raise IndexFileError(f"{path} is truncated")
        if zlib.crc32(payload) & 0xFFFFFFFF != header["payload_crc32"]:
            raise IndexFileError(f"{path} fails its checksum")
        info = IndexHeader(
            uuid=str(header["uuid"]),
            factory=str(header["factory"]),
            dim=int(header["dim"]),
            exact=bool(header["exact"]),
            applied=int(header["applied"]),
            vectors_version=int(header["vectors_version"]),
        )
        index = faiss.deserialize_index(payload)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexFileError(f"{path} is corrupt: {exc}") from None
    wrapped = isinstance(index, faiss.IndexIDMap2) or extract_ivf(index) is not None
    if not wrapped or index.d != info.dim:
        raise IndexFileError(f"{path} holds a {type(index).__name__}, not the catalog's index")
    return index, info


def remove_stale_temp_files(folder: Path, name: str) -> None:
    """Delete temporary files of :func:`atomic_write` left by dead processes."""
    for tmp in folder.glob(f".{name}.*.tmp"):
        parts = tmp.name[len(name) + 2 :].split(".")
        if parts and parts[0].isdigit() and not _alive(int(parts[0])):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
