"""The service's heavy objects, made once per process by ``init_app``.

:class:`Services` holds the loaded matchers (one per offered recipe), the catalog (or
``None``) and the limits requests are checked against. It lives in
``app.extensions["siammatch"]``; views reach it through :func:`current_services`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app

from api.errors import CatalogUnavailableError
from api.validation import Limits
from index.search import DEFAULT_CANDIDATES
from matcher.siamese_matcher import ReferenceFeatures

logger = logging.getLogger(__name__)

EXTENSION = "siammatch"


@dataclass
class Services:
    """What the views work with.

    Attributes:
        matchers: recipe name -> loaded matcher.
        default_recipe: the recipe used when a request names none.
        catalog: the product catalog, or ``None`` when the service runs without one.
        limits: request limits.
        default_threshold: score threshold when a request gives none (``None``: recipe's).
        search_candidates: products retrieved before batched verification in a search.
        openapi: the generated OpenAPI document, built on first request.
    """

    matchers: dict[str, Any]
    default_recipe: str
    catalog: Any | None
    limits: Limits
    default_threshold: float | None = None
    search_candidates: int = DEFAULT_CANDIDATES
    openapi: dict[str, Any] | None = None

    @property
    def matcher(self) -> Any:
        """The default recipe's matcher."""
        return self.matchers[self.default_recipe]

    def require_catalog(self) -> Any:
        """The catalog.

        Raises:
            CatalogUnavailableError: the service runs without a catalog.
        """
        if self.catalog is None:
            raise CatalogUnavailableError(
                "this service runs without a catalog (start it with a catalog folder)"
            )
        return self.catalog

    def catalog_reference(self, product_id: str, recipe: str) -> ReferenceFeatures:
        """A catalog product's template features for ``recipe``'s matcher (cached by the
        catalog, so a catalog reference costs no template pass).

        Raises:
            CatalogUnavailableError: no catalog.
            ProductNotFoundError: unknown id.
        """
        return self.require_catalog().template_features(product_id, matcher=self.matchers[recipe])

    def default_max_instances(self, recipe: str) -> int:
        """The recipe's own ``max_instances``, within the service's cap."""
        return max(1, min(self.matchers[recipe].max_instances, self.limits.max_instances))


def current_services() -> Services:
    """The :class:`Services` of the application handling the current request."""
    return current_app.extensions[EXTENSION]
