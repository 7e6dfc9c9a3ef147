"""The numeric and enumerated request fields, declared once for validation and OpenAPI.

Each :class:`NumberField` names its bounds, the upper one possibly a service limit
(``Limits.max_instances`` ...), and gives both what :mod:`api.validation` checks
(:meth:`NumberField.parse`) and what ``/openapi.json`` documents
(:meth:`NumberField.openapi`), so the two cannot disagree: a service started with
``SIAMMATCH_MAX_INSTANCES=7`` documents ``maximum: 7`` and refuses 8. The ``recipe`` field
is the enum of the recipes the service loaded (:func:`recipe_schema`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from api.field_values import optional_float, optional_int


@dataclass(frozen=True)
class NumberField:
    """A number a request may carry.

    Attributes:
        name: the field (form field, JSON key or query parameter).
        integer: an integer field (else any finite number).
        low: the smallest value allowed.
        high: the largest value allowed, or the name of the ``Limits`` attribute holding it.
        description: what it means, for the OpenAPI document.
    """

    name: str
    integer: bool
    low: float
    high: float | str
    description: str

    def upper(self, limits: Any) -> float:
        """The largest value allowed under ``limits`` (an :class:`api.validation.Limits`)."""
        return getattr(limits, self.high) if isinstance(self.high, str) else self.high

    def parse(self, value: Any, limits: Any) -> float | int | None:
        """The checked value (``None`` passes through).

        Raises:
            InvalidArgumentError: not a number/integer, or outside ``[low, upper]``.
        """
        if self.integer:
            return optional_int(value, self.name, lo=int(self.low), hi=int(self.upper(limits)))
        return optional_float(value, self.name, lo=self.low, hi=self.upper(limits))

    def openapi(self, limits: Any) -> dict[str, Any]:
        """The field's OpenAPI schema under ``limits``."""
        high = self.upper(limits)
        return {
            "type": "integer" if self.integer else "number",
            "minimum": int(self.low) if self.integer else self.low,
            "maximum": int(high) if self.integer else high,
            "description": self.description,
        }


THRESHOLD = NumberField(
    "threshold", False, 0.0, 1.0, "minimum score of what is returned (default: the service's)"
)
MAX_INSTANCES = NumberField(
    "max_instances", True, 1, "max_instances", "most instances returned (default: the recipe's)"
)
K = NumberField("k", True, 1, "max_k", "most catalog products returned")
PAGE_LIMIT = NumberField("limit", True, 1, "max_page_size", "products per page")

#: Query parameters documented by the views' docstrings whose bounds come from here.
QUERY_FIELDS = {PAGE_LIMIT.name: PAGE_LIMIT}


def recipe_schema(recipes: Iterable[str]) -> dict[str, Any]:
    """The OpenAPI schema of the ``recipe`` field: one of the service's recipes."""
    return {
        "type": "string",
        "enum": sorted(recipes),
        "description": "one of the service's recipes (default: its default recipe)",
    }
