"""Small fail-loud registries of named components.

A registry maps a name to a callable (a class or a builder function). Names are chosen by
users in recipes, so a duplicate registration is a programming error and an unknown name
is a user error that lists what is available.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from matcher.errors import UnknownComponentError

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """A named ``dict[str, Callable]`` that refuses duplicates and explains misses.

    Args:
        kind: what the registry holds, used in error messages ("backbone", "head" ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``fn`` under ``name``.

        Raises:
            ValueError: ``name`` is already registered.
        """

        def decorator(fn: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = fn
            return fn

        return decorator

    def get(self, name: str) -> T:
        """Return the component registered as ``name``.

        Raises:
            UnknownComponentError: ``name`` is not registered; the message lists valid names.
        """
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}; valid names: {valid}"
            ) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
