"""``siammatch catalog``: build and query a product catalog from the command line.

Sub-commands (each takes ``--catalog DIR|URL``: a catalog folder or a ``postgresql://``
database; default ``$SIAMMATCH_CATALOG``, else ``var/catalog``):

* ``add ID IMAGE [--metadata JSON] [--box x0,y0,x1,y1]`` — add one product;
* ``import DIR`` — add every image of a folder (id = file stem), or the catalog of a
  synthetic dataset written by ``siammatch synth`` (its product records as metadata);
* ``search SCENE [-k K]`` — which products are in a scene (retrieval + verification);
* ``rm ID``, ``list``, ``info [--verify]``, ``rebuild [--factory F]``;
* ``migrate --from SRC --to DST`` — copy a catalog (e.g. a folder into PostgreSQL).

Library errors (unknown id, duplicate, bad image ...) propagate to :func:`api.cli.main`,
which prints one line and exits with status 2. Heavy imports stay inside the commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from api.defaults import DEFAULT_CATALOG

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def register(sub: Any) -> None:
    """Add the ``catalog`` command and its sub-commands to ``sub`` (an ``add_subparsers``)."""
    from api.cli import model_args

    parser = sub.add_parser("catalog", help="manage and search the product catalog")
    csub = parser.add_subparsers(dest="catalog_command", required=True)

    p = csub.add_parser("add", help="add one product")
    p.add_argument("product_id", metavar="ID", help="product id")
    p.add_argument("image", metavar="IMAGE", help="reference image of the product")
    p.add_argument("--metadata", help="JSON object stored with the product")
    p.add_argument("--box", help="product box in the image: x0,y0,x1,y1 (default: foreground)")
    _catalog_args(p, creating=True)
    p.set_defaults(func=cmd_add)

    p = csub.add_parser("import", help="add every image of a folder or a synthetic dataset")
    p.add_argument("source", metavar="DIR", help="folder of images, or a `siammatch synth` dataset")
    p.add_argument("--skip-existing", action="store_true", help="skip ids already present")
    _catalog_args(p, creating=True)
    p.set_defaults(func=cmd_import)

    p = csub.add_parser("search", help="find catalog products in a scene")
    p.add_argument("scene", metavar="SCENE", help="scene image")
    p.add_argument("-k", type=int, default=5, help="products to return (default 5)")
    p.add_argument(
        "--candidates", type=int, default=None, help="products verified (default: the search's, 10)"
    )
    p.add_argument("--threshold", type=float, default=None, help="verification score floor")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    model_args(p)
    _catalog_args(p)
    p.set_defaults(func=cmd_search)

    p = csub.add_parser("rm", help="remove a product")
    p.add_argument("product_id", metavar="ID", help="product id")
    _catalog_args(p)
    p.set_defaults(func=cmd_rm)

    p = csub.add_parser("list", help="list products by id")
    p.add_argument("--cursor", help="start after this id (the previous page's cursor)")
    p.add_argument("--limit", type=int, default=50, help="page size (default 50)")
    p.add_argument("--json", action="store_true", help="print the page as JSON")
    _catalog_args(p)
    p.set_defaults(func=cmd_list)

    p = csub.add_parser("info", help="catalog settings and sizes")
    p.add_argument("--verify", action="store_true", help="also compare the index with the DB")
    _catalog_args(p)
    p.set_defaults(func=cmd_info)

    p = csub.add_parser("rebuild", help="rebuild (and train) the FAISS index")
    p.add_argument("--factory", help="new index_factory string (default: keep)")
    _catalog_args(p)
    p.set_defaults(func=cmd_rebuild)

    p = csub.add_parser("migrate", help="copy a catalog into an empty folder or database")
    p.add_argument("--from", dest="source", required=True, help="the catalog to copy")
    p.add_argument(
        "--to", dest="target", required=True, help="a postgresql:// URL or an empty folder"
    )
    p.add_argument("--chunk", type=int, default=256, help="products per transaction (256)")
    p.set_defaults(func=cmd_migrate)


def _catalog_args(p: argparse.ArgumentParser, *, creating: bool = False) -> None:
    p.add_argument(
        "--catalog",
        default=os.environ.get("SIAMMATCH_CATALOG") or DEFAULT_CATALOG,
        help=f"catalog folder or postgresql:// URL ($SIAMMATCH_CATALOG, else {DEFAULT_CATALOG})",
    )
    p.add_argument(
        "--index-cache",
        default=None,
        help="folder of this machine's FAISS caches of database catalogs "
        "($SIAMMATCH_INDEX_CACHE, else var/index-cache)",
    )
    if creating:
        p.add_argument(
            "--factory", default="Flat", help="index_factory string of a new catalog (Flat)"
        )
        p.add_argument("--embedder", help="embedder checkpoint for a new catalog")


def _open(args: argparse.Namespace, *, create: bool = False, matcher: Any = None):
    from index.catalog import Catalog
    from matcher.embedder import load_embedder

    embedder = load_embedder(args.embedder) if getattr(args, "embedder", None) else None
    return Catalog(
        args.catalog,
        embedder=embedder,
        factory=getattr(args, "factory", None) or "Flat",
        matcher=matcher,
        create=create,
        index_cache=args.index_cache,
        follow=False,
    )


def _where(args: argparse.Namespace) -> str:
    """The catalog argument as it may be printed (no password)."""
    from index.location import redact_url

    return redact_url(args.catalog)


# -- commands ----------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    from index.products import parse_metadata, validate_product_id
    from matcher.images import load_image, parse_box

    validate_product_id(args.product_id)  # fail before a new catalog folder is made
    metadata = parse_metadata(args.metadata) if args.metadata else None
    box = parse_box(args.box) if args.box else None
    image = load_image(args.image)
    with _open(args, create=True) as catalog:
        product = catalog.add(args.product_id, image, metadata=metadata, box=box)
        total = len(catalog)
    print(f"added {product.product_id} to {_where(args)} ({total} products)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from matcher.errors import InvalidArgumentError

    source = Path(args.source)
    if not source.is_dir():
        raise InvalidArgumentError(f"{args.source} is not a folder")
    items = _synth_items(source) if (source / "annotations.json").is_file() else None
    if items is None:
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        items = [(p.stem, str(p), {"file": p.name}, None) for p in files]
    if not items:
        raise InvalidArgumentError(f"{args.source} holds no images")
    with _open(args, create=True) as catalog:
        if args.skip_existing:
            before = len(items)
            items = [it for it in items if it[0] not in catalog]
            if before != len(items):
                print(f"skipping {before - len(items)} products already in the catalog")
        added = catalog.add_many(items, progress=True)
        total = len(catalog)
    print(f"imported {added} products into {_where(args)} ({total} products)")
    return 0


def _synth_items(root: Path) -> list[tuple[str, str, dict, None]] | None:
    """The catalog of a ``siammatch synth`` dataset, or ``None`` for other folders."""
    from trainers.data.synth import is_synth_dataset

    if not is_synth_dataset(root):
        return None
    with open(root / "annotations.json", encoding="utf-8") as fh:
        products = json.load(fh).get("products", [])
    items = []
    for record in products:
        path = root / record["catalog"]
        metadata = {k: v for k, v in record.items() if k not in ("catalog", "lookalikes")}
        items.append((path.stem, str(path), metadata, None))
    return items


def cmd_search(args: argparse.Namespace) -> int:
    from api.cli import load_matcher
    from index.search import DEFAULT_CANDIDATES, search_scene
    from matcher.images import load_image

    scene = load_image(args.scene)
    m = load_matcher(args)
    with _open(args, matcher=m) as catalog:
        hits = search_scene(
            catalog,
            m,
            scene,
            k=args.k,
            candidates=DEFAULT_CANDIDATES if args.candidates is None else args.candidates,
            score_threshold=args.threshold,
        )
    if args.json:
        payload = {
            "recipe": m.name,
            "scene_size": {"height": scene.shape[0], "width": scene.shape[1]},
            "hits": [h.to_dict() for h in hits],
        }
        print(json.dumps(payload, indent=2))
        return 0
    if not hits:
        print(f"no catalog product found in {args.scene}")
    for i, hit in enumerate(hits, 1):
        x0, y0, x1, y1 = hit.instances[0].box
        print(
            f"{i}. {hit.product_id} score {hit.score:.3f} (retrieval {hit.retrieval_score:.3f}) "
            f"box {x0:.1f},{y0:.1f},{x1:.1f},{y1:.1f} instances {len(hit.instances)}"
        )
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    with _open(args) as catalog:
        catalog.delete(args.product_id)
        total = len(catalog)
    print(f"removed {args.product_id} from {_where(args)} ({total} products)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as catalog:
        products, cursor = catalog.list(cursor=args.cursor, limit=args.limit)
    if args.json:
        print(json.dumps({"products": [p.to_dict() for p in products], "next": cursor}, indent=2))
        return 0
    for p in products:
        print(f"{p.product_id}\t{json.dumps(p.metadata, ensure_ascii=False)}")
    if cursor is not None:
        print(f"more: --cursor {cursor}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args) as catalog:
        info = catalog.info()
        if args.verify:
            report = catalog.verify()
            info["verify"] = {
                "consistent": report["consistent"],
                "missing": len(report["missing"]),
                "extra": len(report["extra"]),
            }
    print(json.dumps(info, indent=2))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    with _open(args) as catalog:
        catalog.rebuild(args.factory)
        info = catalog.info()["index"]
    print(f"rebuilt {_where(args)}: {info['factory']} ({info['state']}, {info['vectors']} vectors)")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from index.location import redact_url
    from index.migrate import copy_catalog
    from matcher.checks import check_int

    chunk = check_int("--chunk", args.chunk, 1, 10_000)
    report = copy_catalog(args.source, args.target, chunk=chunk, progress=True)
    print(
        f"copied {report.copied} products from {redact_url(args.source)} to "
        f"{redact_url(args.target)} ({report.products} products, catalog {report.uuid})"
    )
    return 0
