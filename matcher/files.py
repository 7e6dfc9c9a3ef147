"""Writing files so that a crash never leaves half of one: :func:`atomic_write`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(fh)``: a temporary file in the same folder, fsync,
    rename over ``path``, fsync of the folder. Readers see the old file or the complete new
    one; on any error the temporary file is removed and the old file stays. The new file
    keeps the old one's permissions (0644 when there was none).

    The temporary file is ``.<name>.<pid>.<random>.tmp``, so a cleaner can tell the files
    of dead writers (see :func:`index.index_file.remove_stale_temp_files`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        # mkstemp creates the file private (0600); give it the mode of the file it
        # replaces, or the usual 0644 for a new one.
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path
