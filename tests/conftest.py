"""Suite-wide settings and hooks.

- Torch runs with one thread per test process, seeded: numbers do not depend on how many
  cores the machine has or on what else runs on them, and on a shared 2-core machine one
  thread per process is also the fastest (two threads spin on each other). Tests that need
  more set it themselves.
- Tests marked ``needs_fixtures`` (``tests/fixtures.py``) fail with one clear line when
  ``../shared/fixtures`` is absent (never a silent skip); a failing one says when the
  installed library versions differ from the fixtures'.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch starts its thread pools
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest
import torch

from tests.fixtures import missing_fixtures, version_mismatch
from tests.pg_cluster import PgCluster

torch.set_num_threads(1)
# Deterministic kernels wherever torch has them (on CPU nearly all already are); warn, not
# fail, for the few GPU ops that have none, so the GPU tests still run on a lent device.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
torch.use_deterministic_algorithms(True, warn_only=True)


@pytest.fixture(autouse=True, scope="session")
def _torch_settings():
    torch.manual_seed(0)
    yield


# -- catalog backends: every catalog and service test runs on SQLite and on PostgreSQL ------

#: The catalog stores the catalog and service suites run on.
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for this test process (started on first use)."""
    cluster = PgCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The catalog store under test."""
    return request.param


@pytest.fixture
def catalog_location(backend, tmp_path, monkeypatch, request) -> str:
    """Where this test's catalog lives: a new folder, or a new PostgreSQL database (dropped
    afterwards). Database catalogs keep their FAISS cache in the test's own folder."""
    monkeypatch.setenv("SIAMMATCH_INDEX_CACHE", str(tmp_path / "index-cache"))
    return new_location(request, backend, tmp_path / "catalog")


def new_location(request: pytest.FixtureRequest, backend: str, folder) -> str:
    """A new catalog location on ``backend``: ``folder``, or a new database of the test
    process's PostgreSQL server (dropped when ``request``'s fixture is torn down)."""
    if backend == "sqlite":
        return str(folder)
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.new_database()
    request.addfinalizer(lambda: cluster.drop_database(url))
    return url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first (a stable sort): with two xdist workers they then run
    beside the many short tests instead of ending the run alone on one core."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_report_header(config) -> list[str]:
    missing = missing_fixtures()
    if missing:
        return [missing]
    return [f"parity fixtures: {version_mismatch() or 'made with the installed versions'}"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_fixtures") is None:
        return
    missing = missing_fixtures()
    if missing is None:
        return
    pytest.fail(f"{missing}: the parity tests need ../shared beside the project", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.failed and item.get_closest_marker("needs_fixtures") and not missing_fixtures():
        mismatch = version_mismatch()
        if mismatch:
            report.sections.append(("parity fixture versions", mismatch))
            report.longrepr = f"{mismatch}\n{report.longrepr}"
    return report
