"""Atomic file writes: complete or absent, with ordinary permissions."""

from __future__ import annotations

import stat

import pytest

from matcher.files import atomic_write


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_readable_by_others_and_a_replaced_one_keeps_its_mode(tmp_path):
    fresh = tmp_path / "fresh.json"
    atomic_write(fresh, lambda fh: fh.write(b"{}"))
    assert fresh.read_bytes() == b"{}" and _mode(fresh) == 0o644
    private = tmp_path / "private.json"
    private.write_bytes(b"old")
    private.chmod(0o600)
    atomic_write(private, lambda fh: fh.write(b"new"))
    assert private.read_bytes() == b"new" and _mode(private) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]
