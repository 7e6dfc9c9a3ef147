"""Loading recipes: YAML in ``configs/`` -> validated :class:`~matcher.config.Recipe`.

Loading validates every key against the schema rooted at :class:`~matcher.config.Recipe`
(:mod:`matcher.model_config`, :mod:`matcher.inference_config`, :mod:`matcher.train_config`):
an unknown key or a value of the wrong type raises :class:`~matcher.errors.ConfigError`
naming the dotted key (with a suggestion for near misses). ``key=value`` overrides
(``inference.match.score_threshold=0.4``) go through the same validation. A recipe may start
from another with ``_base_: other_recipe``; ``tiny/name`` names a recipe in a subfolder.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from matcher.checks import as_float, as_int
from matcher.config import Recipe
from matcher.errors import ConfigError, UnknownComponentError

_RECIPE_DIR_ENV = "SIAMMATCH_CONFIG_DIR"


def recipe_dir() -> Path:
    """Folder holding the recipes: ``$SIAMMATCH_CONFIG_DIR`` or the project's ``configs/``."""
    env = os.environ.get(_RECIPE_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "configs"


def list_recipes(subfolder: str | None = None) -> list[str]:
    """Names of the recipes in :func:`recipe_dir` (files starting with ``_`` are partials).

    Args:
        subfolder: list ``recipe_dir()/subfolder`` instead (e.g. ``"tiny"``); names are
            then ``"subfolder/name"``.
    """
    folder = recipe_dir() / subfolder if subfolder else recipe_dir()
    prefix = f"{subfolder}/" if subfolder else ""
    return sorted(prefix + p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


def load_recipe(
    name_or_path: str | os.PathLike,
    overrides: list[str] | None = None,
    *,
    schema: type = Recipe,
) -> Any:
    """Load and validate a recipe.

    Args:
        name_or_path: a recipe name from :func:`list_recipes` or a path to a YAML file.
        overrides: ``"dotted.key=value"`` strings applied after loading; values are parsed
            as YAML scalars/lists.
        schema: the frozen dataclass to validate into (:class:`Recipe` for matchers; other
            trainable models, e.g. the catalog embedder, bring their own).

    Returns:
        The frozen, validated ``schema`` instance.

    Raises:
        UnknownComponentError: no recipe of that name.
        ConfigError: unknown key, wrong type, or malformed override.
    """
    raw = load_raw_recipe(name_or_path)
    for item in overrides or []:
        apply_override(raw, item, schema=schema)
    return recipe_from_dict(raw, schema=schema)


def load_raw_recipe(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """A recipe's YAML with its ``_base_`` chain merged and ``name`` set, not yet validated.

    Raises:
        UnknownComponentError: no recipe of that name.
        ConfigError: unreadable YAML or a bad ``_base_`` chain.
    """
    path = _resolve_recipe_path(name_or_path)
    raw = _load_raw(path, seen=())
    raw.setdefault("name", _recipe_name(path))
    return raw


def recipe_from_dict(raw: dict[str, Any], *, schema: type = Recipe) -> Any:
    """Validate plain data (e.g. the recipe stored in a checkpoint) into ``schema``.

    Raises:
        ConfigError: unknown key or wrong type, naming the dotted key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a recipe must be a mapping, got {type(raw).__name__}")
    return _build(schema, raw, "")


def apply_override(raw: dict[str, Any], item: str, *, schema: type = Recipe) -> None:
    """Apply one ``dotted.key=value`` override to raw recipe data in place.

    Raises:
        ConfigError: the override has no ``=`` or names a key outside the schema.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
    parts = key.split(".")
    _check_path_in_schema(parts, schema)
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _recipe_name(path: Path) -> str:
    """``name`` for ``configs/name.yaml``, ``tiny/name`` for ``configs/tiny/name.yaml``."""
    try:
        return path.resolve().relative_to(recipe_dir().resolve()).with_suffix("").as_posix()
    except ValueError:
        return path.stem


def _resolve_recipe_path(name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path)
    if not text.endswith((".yaml", ".yml")):
        named = recipe_dir() / f"{text}.yaml"
        if named.is_file():
            return named
        if not Path(text).is_file():
            sub = text.split("/")[0] if "/" in text else None
            names = list_recipes() + (
                list_recipes(sub) if sub and (recipe_dir() / sub).is_dir() else []
            )
            valid = ", ".join(names) or "(none)"
            raise UnknownComponentError(f"unknown recipe {text!r}; valid names: {valid}")
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"recipe file {text!r} does not exist")
    return path


def _load_raw(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        raise ConfigError(f"recipe {path.name}: circular _base_ chain")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path.name} must be a mapping at the top level")
    base = data.pop("_base_", None)
    if base is None:
        return data
    base_path = _resolve_recipe_path(base)
    merged = _load_raw(base_path, (*seen, path))
    merged.pop("name", None)
    merged.pop("description", None)
    return _deep_merge(merged, data)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_path_in_schema(parts: list[str], schema: type) -> None:
    cls: Any = schema
    done: list[str] = []
    for part in parts:
        cls = _unwrap_optional(cls)
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(
                f"override key {'.'.join(parts)!r}: {'.'.join(done)} is not a section"
            )
        hints = typing.get_type_hints(cls)
        if part not in hints:
            raise ConfigError(_unknown_key_message(".".join([*done, part]), part, hints))
        cls = hints[part]
        done.append(part)


def _unknown_key_message(dotted: str, key: str, hints: dict[str, Any]) -> str:
    msg = f"unknown recipe key {dotted!r}"
    close = difflib.get_close_matches(key, list(hints), n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg + f"; valid keys here: {', '.join(sorted(hints))}"


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _build(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"recipe key {path or '<root>'!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{path}.{key}" if path else str(key)
        if key not in hints:
            raise ConfigError(_unknown_key_message(dotted, str(key), hints))
        kwargs[key] = _coerce(value, hints[key], dotted)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f" in {path!r}" if path else ""
        raise ConfigError(f"missing recipe key(s){where}: {', '.join(missing)}")
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"recipe key {path!r}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"recipe key {path!r} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"recipe key {path!r} must be a list, got {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"recipe key {path!r} must be a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"recipe key {path!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        return as_int(f"recipe key {path!r}", value)
    if tp is float:
        return as_float(f"recipe key {path!r}", value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"recipe key {path!r} must be a string, got {value!r}")
        return value
    raise ConfigError(f"recipe key {path!r}: unsupported schema type {tp!r}")
