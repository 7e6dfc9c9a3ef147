"""siammatch's library core: Siamese matchers for one-shot product matching.

Typical use::

    import matcher
    m = matcher.load("siamrpnpp_r50", weights="model.pth", device="cpu")
    ref = matcher.Reference.from_image("product.jpg", box=None)
    result = m.match(ref, "shelf.jpg", max_instances=5, score_threshold=0.3)

This package imports nothing from ``api``, ``index`` or ``trainers``, nor Flask or FAISS.
"""

from matcher.builder import (
    FAMILIES,
    build,
    load,
    load_trained,
    resolve_device,
    runs_untrained,
)
from matcher.checkpoints.shipped import shipped_weights
from matcher.config import Recipe
from matcher.errors import (
    CatalogError,
    CheckpointError,
    ConfigError,
    DuplicateProductError,
    ImageTooLargeError,
    ImageTooThinError,
    InvalidArgumentError,
    InvalidBoxError,
    InvalidImageError,
    ProductNotFoundError,
    SiammatchError,
    UnknownComponentError,
)
from matcher.images import ImageLimits, load_image, parse_box, validate_box
from matcher.inference import (  # noqa: F401 - tracker registrations
    da_tracker,
    siamfc_tracker,
    siamfcpp_tracker,
    siammask_tracker,
)
from matcher.interface import Matcher
from matcher.recipes import list_recipes, load_recipe
from matcher.siamese_matcher import ReferenceFeatures, SiameseMatcher
from matcher.structures import Instance, MatchResult, Reference

__all__ = [
    "FAMILIES",
    "CatalogError",
    "CheckpointError",
    "ConfigError",
    "DuplicateProductError",
    "ImageLimits",
    "ImageTooLargeError",
    "ImageTooThinError",
    "Instance",
    "InvalidArgumentError",
    "InvalidBoxError",
    "InvalidImageError",
    "MatchResult",
    "Matcher",
    "ProductNotFoundError",
    "Recipe",
    "Reference",
    "ReferenceFeatures",
    "SiameseMatcher",
    "SiammatchError",
    "UnknownComponentError",
    "build",
    "list_recipes",
    "load",
    "load_image",
    "load_recipe",
    "load_trained",
    "parse_box",
    "resolve_device",
    "runs_untrained",
    "shipped_weights",
    "validate_box",
]
