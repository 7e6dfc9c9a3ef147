"""Product catalog: embedder, FAISS index and metadata store (see DESIGN.md).

Typical use::

    import matcher
    from index import Catalog, search_scene

    m = matcher.load("siamfc_pixels")
    with Catalog("var/catalog", matcher=m) as catalog:
        catalog.add("sku-1", "sku-1.png", metadata={"name": "Tea"})
        hits = search_scene(catalog, m, "shelf.jpg", k=5)
"""

from index.catalog import Catalog
from index.products import Hit, Product
from index.search import SceneHit, search_scene
from matcher.embedder import (
    Embedder,
    EmbedderSpec,
    build_embedder,
    load_embedder,
    save_embedder,
)

__all__ = [
    "Catalog",
    "Embedder",
    "EmbedderSpec",
    "Hit",
    "Product",
    "SceneHit",
    "build_embedder",
    "load_embedder",
    "save_embedder",
    "search_scene",
]
