"""``siammatch catalog``: add, import, list, search, rm, info, rebuild; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import api.cli
from api.cli import main
from tests.helpers import clutter_scene, iou, paste, product_image


@pytest.fixture(autouse=True)
def _catalog_command(monkeypatch):
    monkeypatch.setattr(api.cli, "COMMAND_MODULES", ("api.cli_catalog",))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee", "rocket"):
        Image.fromarray(product_image(name)).save(folder / f"{name}.png")
    (folder / "readme.txt").write_text("not an image")
    box = (200, 100, 300, 200)
    scene = paste(clutter_scene(320, 420, seed=4), product_image("coffee"), box)
    Image.fromarray(scene).save(tmp_path / "scene.png")
    return tmp_path, box


def test_import_list_search_rm_info(files, capsys, catalog_location, backend):
    root, box = files
    cat = catalog_location
    code, out, err = run(capsys, "catalog", "import", str(root / "photos"), "--catalog", cat)
    assert code == 0, err
    assert "imported 3 products" in out
    code, out, err = run(
        capsys,
        "catalog",
        "add",
        "chelsea",
        str(root / "photos" / "astronaut.png"),
        "--metadata",
        '{"name": "Cat", "price": 9}',
        "--box",
        "10,10,150,150",
        "--catalog",
        cat,
    )
    assert code == 0 and "added chelsea" in out and "(4 products)" in out, err
    code, out, _ = run(capsys, "catalog", "list", "--limit", "2", "--json", "--catalog", cat)
    page = json.loads(out)
    assert [p["product_id"] for p in page["products"]] == ["astronaut", "chelsea"]
    assert page["next"] == "chelsea"
    assert page["products"][1]["metadata"] == {"name": "Cat", "price": 9}
    code, out, err = run(
        capsys,
        "catalog",
        "search",
        str(root / "scene.png"),
        "-k",
        "2",
        "--json",
        "--catalog",
        cat,
        "--recipe",
        "siamfc_pixels",  # template matching: exact on these pasted photos
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["recipe"] == "siamfc_pixels"
    assert result["hits"][0]["product_id"] == "coffee"
    assert iou(result["hits"][0]["instances"][0]["box"], box) >= 0.7
    code, out, _ = run(
        capsys,
        "catalog",
        "search",
        str(root / "scene.png"),
        "--catalog",
        cat,
        "--recipe",
        "siamfc_pixels",
    )
    assert out.startswith("1. coffee score")
    code, out, _ = run(capsys, "catalog", "rm", "coffee", "--catalog", cat)
    assert code == 0 and "(3 products)" in out
    code, out, _ = run(capsys, "catalog", "info", "--verify", "--catalog", cat)
    info = json.loads(out)
    assert info["products"] == 3 and info["verify"]["consistent"] is True
    assert info["backend"] == backend and info["path"] == cat
    code, out, _ = run(capsys, "catalog", "rebuild", "--factory", "HNSW32", "--catalog", cat)
    assert code == 0 and "HNSW32" in out


def test_import_skips_existing(files, capsys, catalog_location):
    root, _ = files
    cat = catalog_location
    assert run(capsys, "catalog", "import", str(root / "photos"), "--catalog", cat)[0] == 0
    code, _, err = run(capsys, "catalog", "import", str(root / "photos"), "--catalog", cat)
    assert code == 2 and "already in the catalog" in err
    code, out, _ = run(
        capsys, "catalog", "import", str(root / "photos"), "--skip-existing", "--catalog", cat
    )
    assert code == 0 and "imported 0 products" in out


def test_import_a_synthetic_dataset(tmp_path, capsys, catalog_location):
    from trainers.data.synth import generate

    data = generate(tmp_path / "synth", num_products=3, num_scenes=1, seed=0, workers=1)
    cat = catalog_location
    code, out, err = run(capsys, "catalog", "import", str(data), "--catalog", cat)
    assert code == 0 and "imported 3 products" in out, err
    code, out, _ = run(capsys, "catalog", "list", "--json", "--catalog", cat)
    products = json.loads(out)["products"]
    assert [p["product_id"] for p in products] == ["00001", "00002", "00003"]
    assert {"name", "family", "category"} <= set(products[0]["metadata"])


def _one_line_error(
    root: Path, capsys: pytest.CaptureFixture[str], cat: str, args: list[str], message: str
) -> None:
    """``siammatch catalog ARGS --catalog CAT`` exits with status 2 and one error line
    holding ``message`` (IMG, NOFILE and THIN stand for an image, a missing file and a
    5000x1 image; ``rm`` and ``search`` run on a catalog holding one product)."""
    image = str(root / "photos" / "coffee.png")
    if args[0] in ("rm", "search"):
        assert run(capsys, "catalog", "add", "seed", image, "--catalog", cat)[0] == 0
    thin = root / "thin.png"
    Image.fromarray(np.full((5000, 1, 3), 9, np.uint8)).save(thin)
    subs = {"IMG": image, "NOFILE": str(root / "nope.png"), "THIN": str(thin)}
    argv = [subs.get(a, a) for a in args]
    code, out, err = run(capsys, "catalog", *argv, "--catalog", cat)
    assert code == 2
    assert out == "" or args[0] in ("rm", "search")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siammatch: error:") and message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rm", "ghost"], "no product 'ghost'"),
        (["add", "p", "IMG", "--box", "0,0,5000,10"], "outside"),
        (["info"], "no catalog"),
        (["search", "IMG", "-k", "0"], "k must be"),
    ],
)
def test_catalog_errors_print_one_line_and_exit_2(files, capsys, catalog_location, args, message):
    _one_line_error(files[0], capsys, catalog_location, args, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x y", "IMG"], "invalid product id"),
        (["add", "p", "IMG", "--metadata", "[1, 2]"], "JSON object"),
        (["add", "p", "IMG", "--metadata", "{bad"], "not valid JSON"),
        (["add", "p", "THIN"], "aspect ratio 5000:1 is over the limit"),
        (["add", "p", "IMG", "--metadata", '{"a":' * 5000 + "1" + "}" * 5000], "nested"),
        (["add", "p", "IMG", "--metadata", '{"a":' * 40 + "1" + "}" * 40], "nested more than 32"),
        (["add", "p", "NOFILE"], "does not exist"),
        (["import", "NOFILE"], "not a folder"),
    ],
)
def test_argument_errors_are_caught_before_the_catalog_opens(files, capsys, args, message):
    """Refused before any catalog is opened (so a folder catalog: no folder is made)."""
    root = files[0]
    _one_line_error(root, capsys, str(root / "cat"), args, message)
    assert not (root / "cat").exists()
