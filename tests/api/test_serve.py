"""``siammatch serve``: argument checks, the default catalog, the gunicorn command line,
and a real gunicorn server with two workers spoken to over HTTP, on a catalog folder and on
a PostgreSQL catalog. (A database catalog's preparation and its errors:
``test_catalog_backends``.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import api.cli
import api.cli_serve
import api.defaults
from api.default_catalog import ensure_catalog, synth_products
from index.catalog import Catalog
from tests.api.http_helpers import ROOT, serving
from tests.helpers import iou


def test_serve_prepares_the_catalog_and_execs_gunicorn(serve_cli, tmp_path, capsys):
    folder = tmp_path / "var" / "catalog"
    argv = ["serve", "--catalog", str(folder), "--seed-products", "3", "--port", "8137"]
    assert api.cli.main([*argv, "--workers", "3", "--threads", "2"]) == 0
    ((command, env),) = serve_cli
    assert command[:3] == [sys.executable, "-m", "gunicorn"]
    assert command[-1] == "api.app:create_app()"
    assert "--preload" not in command
    assert command[command.index("--bind") + 1] == "127.0.0.1:8137"
    assert command[command.index("--workers") + 1] == "3"
    assert command[command.index("--threads") + 1] == "2"
    assert command[command.index("--config") + 1] == "python:api.gunicorn_conf"
    assert env["SIAMMATCH_CATALOG"] == str(folder.resolve())
    assert env["SIAMMATCH_RECIPE"] == api.defaults.DEFAULT_RECIPE
    assert env["SIAMMATCH_DEVICE"] == "cpu"
    assert "SIAMMATCH_WEIGHTS" not in env
    assert env["SIAMMATCH_READ_TIMEOUT"] == "30"
    assert env["SIAMMATCH_REQUEST_TIMEOUT"] == "120"  # --timeout's
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_dir()
    assert int(env["OMP_NUM_THREADS"]) >= 1
    assert "created catalog" in capsys.readouterr().err
    with Catalog(folder, create=False) as catalog:
        assert len(catalog) == 3
        product = catalog.get("synth-001")
        assert product.metadata["synth_id"] == 1 and product.metadata["name"]
    # A second start keeps the catalog as it is.
    assert api.cli.main(argv) == 0
    assert "created catalog" not in capsys.readouterr().err


def test_serve_single_worker_without_catalog(serve_cli, monkeypatch):
    monkeypatch.setenv("SIAMMATCH_CATALOG", "/should/be/dropped")
    argv = ["serve", "--no-catalog", "--workers", "1", "--access-log", "--request-timeout", "7.5"]
    assert api.cli.main([*argv, "--read-timeout", "4"]) == 0
    ((command, env),) = serve_cli
    assert env["SIAMMATCH_REQUEST_TIMEOUT"] == "7.5" and env["SIAMMATCH_READ_TIMEOUT"] == "4"
    assert "SIAMMATCH_CATALOG" not in env
    assert "PROMETHEUS_MULTIPROC_DIR" not in env  # one worker: plain registry
    assert command[command.index("--access-logfile") + 1] == "-"


def test_metrics_folder_is_emptied(serve_cli, tmp_path, monkeypatch):
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    assert api.cli.main(["serve", "--no-catalog"]) == 0
    assert serve_cli[0][1]["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (["--port", "0"], "--port"),
        (["--workers", "0"], "--workers"),
        (["--threads", "0"], "--threads"),
        (["--read-timeout", "0"], "--read-timeout"),
        (["--request-timeout", "-1"], "--request-timeout"),
        (["--seed-products", "-1"], "--seed-products"),
        (["--weights", "missing.pth"], "does not exist"),
        (["--recipe", "no_such_recipe"], "unknown recipe"),
        (["--recipe", "siamrpn_alexnet_upchannel"], "needs trained weights"),
        (["--extra-recipe", "a,b"], "NAME=WEIGHTS"),
    ],
)
def test_serve_mistakes_exit_2(serve_cli, capsys, args, words):
    assert api.cli.main(["serve", "--no-catalog", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("siammatch: error:")
    assert words in err[0]
    assert serve_cli == []


@pytest.mark.parametrize(
    "variable, value",
    [("SIAMMATCH_PRECISION", "half"), ("SIAMMATCH_MAX_PIXELS", "many"), ("SIAMMATCH_MAX_K", "0")],
)
def test_bad_settings_in_the_environment_exit_2_before_any_worker(
    serve_cli, capsys, monkeypatch, variable, value
):
    monkeypatch.setenv(variable, value)
    assert api.cli.main(["serve", "--no-catalog"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("siammatch: error:")
    assert variable.removeprefix("SIAMMATCH_") in err[0]
    assert serve_cli == []


@pytest.mark.parametrize(
    "catalog, words",
    [
        ("s3://bucket/catalog", "is a s3: URL; a catalog is a folder or a postgresql://"),
        ("{tmp}/photos", "holds other files and no catalog"),
        ("{tmp}/photos/a.png", "is not a folder"),
    ],
)
def test_a_catalog_argument_that_is_no_catalog_folder_exits_2_and_writes_nothing(
    serve_cli, capsys, tmp_path, monkeypatch, catalog, words
):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"not really")
    monkeypatch.chdir(tmp_path)
    assert api.cli.main(["serve", "--catalog", catalog.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("siammatch: error: --catalog:"), err
    assert words in err[0]
    assert serve_cli == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no "s3:" folder
    assert [p.name for p in photos.iterdir()] == ["a.png"]


def test_default_catalog_is_created_once_and_atomically(tmp_path):
    folder = tmp_path / "cat"
    assert ensure_catalog(folder, num_products=2) is True
    assert ensure_catalog(folder, num_products=5) is False
    with Catalog(folder, create=False) as catalog:
        assert len(catalog) == 2
    assert [p.name for p in tmp_path.iterdir() if "creating" in p.name] == []


def test_synth_products_are_deterministic():
    first = list(synth_products(2, seed=4))
    again = list(synth_products(2, seed=4))
    assert [p[0] for p in first] == ["synth-001", "synth-002"]
    assert all((a[1] == b[1]).all() for a, b in zip(first, again, strict=True))
    assert first[0][1].shape == (400, 400, 3)


def test_gunicorn_master_imports_nothing_heavy():
    code = (
        "import sys, api.gunicorn_conf, api.gunicorn_worker\n"
        "print(','.join(m for m in ('torch', 'faiss', 'matcher', 'index', 'flask') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# -- a real server -------------------------------------------------------------------------


def _metric_pids(folder: Path) -> set[str]:
    """The processes that wrote prometheus_client multiprocess files in ``folder``."""
    return {f.stem.rsplit("_", 1)[-1] for f in folder.glob("*.db")}


def _mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


#: Products ``siammatch serve`` gives a new catalog folder in ``server`` (a database gets an
#: empty catalog).
SEEDED = 3


@pytest.fixture
def server(tmp_path, catalog_location):
    """``siammatch serve`` with 2 workers on a free loopback port, stopped with SIGTERM, on
    each catalog backend: a new folder (seeded with ``SEEDED`` synthetic products) or a new
    database (an empty catalog)."""
    args = [
        "--catalog",
        catalog_location,
        "--seed-products",
        str(SEEDED),
        "--workers",
        "2",
        # Template matching: exact on the pasted photos below, and light for two workers.
        # (The default recipe's accuracy is measured by `siammatch eval pairs`; the CLI
        # and app tests run it.)
        "--recipe",
        "siamfc_pixels",
    ]
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    with serving(tmp_path, args, env=env) as running:
        yield running.base, running.proc, running.ready, tmp_path / "metrics"


def test_real_server_over_http(server, backend, pictures):
    base, proc, ready, metrics_dir = server
    seeded = SEEDED if backend == "sqlite" else 0
    assert ready["catalog"]["backend"] == backend
    assert ready["catalog"]["products"] == seeded
    assert ready["default_recipe"] == "siamfc_pixels"
    # The master (the process we started: serve exec'd gunicorn) never loaded torch or faiss.
    master_maps = _mapped_libraries(proc.pid)
    assert "python" in master_maps
    assert "libtorch" not in master_maps and "faiss" not in master_maps

    session = requests.Session()
    files = {"reference": ("r.png", pictures.product_png), "scene": ("s.png", pictures.scene_png)}
    # Two matches at once.
    with ThreadPoolExecutor(2) as pool:
        matches = list(
            pool.map(lambda _: requests.post(base + "/v1/match", files=files, timeout=120), [0, 1])
        )
    for match in matches:
        assert match.status_code == 200, match.text
        assert iou(match.json()["instances"][0]["box"], pictures.box) >= 0.8

    added = session.post(
        base + "/v1/catalog",
        files={"image": ("p.png", pictures.product_png)},
        data={"id": "coffee", "metadata": json.dumps({"name": "Coffee"})},
        timeout=120,
    )
    assert added.status_code == 201, added.text
    # Every worker sees the product at once (the catalog's change log syncs them).
    for _ in range(4):
        got = session.get(base + "/v1/catalog/coffee", timeout=30)
        assert got.status_code == 200 and got.json()["metadata"] == {"name": "Coffee"}

    search = session.post(
        base + "/v1/search",
        files={"scene": ("s.png", pictures.scene_png)},
        data={"k": "3"},
        timeout=120,
    )
    assert search.status_code == 200, search.text
    results = search.json()["results"]
    assert results and results[0]["product_id"] == "coffee"
    assert iou(results[0]["instances"][0]["box"], pictures.box) >= 0.8
    # Whichever worker answers, its index holds the new product too.
    for _ in range(4):
        catalog = session.get(base + "/readyz", timeout=30).json()["catalog"]
        assert catalog["products"] == catalog["index"]["vectors"] == seeded + 1
        assert catalog["replication"]["changes_behind"] == 0

    bad = session.post(base + "/v1/match", files={"scene": ("s.png", b"junk")}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "missing_field"

    for _ in range(6):
        assert session.get(base + "/healthz", timeout=30).status_code == 200
    # Multiprocess mode: whichever worker answers, /metrics counts all workers' requests.
    # (A threaded worker can take every request of a light load: concurrent connections
    # make both serve and write their metric files.)
    deadline = time.monotonic() + 60
    while len(_metric_pids(metrics_dir)) < 2 and time.monotonic() < deadline:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: requests.get(base + "/readyz", timeout=30), range(16)))
    assert len(_metric_pids(metrics_dir)) == 2
    for _ in range(3):
        text = session.get(base + "/metrics", timeout=30).text
        for line in (
            'siammatch_http_requests_total{method="GET",route="/healthz",status="200"} 6.0',
            'siammatch_http_requests_total{method="POST",route="/v1/match",status="200"} 2.0',
            'siammatch_http_requests_total{method="POST",route="/v1/search",status="200"} 1.0',
        ):
            assert line in text
