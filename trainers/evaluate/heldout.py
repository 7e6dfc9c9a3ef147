"""Held-out synthetic sets for evaluation, disjoint from everything the recipes train on.

The synthetic generator draws every product family from
``SeedSequence(seed, spawn_key=(FAMILY_KEY, family))`` and every scene from
``SeedSequence(seed, spawn_key=(SCENE_KEY, index))`` (:mod:`trainers.data.synth`), so a
dataset's product designs and scenes are a function of its seed alone: a seed that no
training or validation source uses gives products and scenes no recipe has seen.
:func:`check_held_out` enforces it: it refuses an evaluation seed used by a training
source, and, since two independent seeds may still (rarely) draw the same brand and
product line, returns the held-out products whose brand and line also occur in a training
catalog, for the protocol to leave out.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from matcher.errors import InvalidArgumentError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthSource:
    """A synthetic dataset a recipe trains or validates on.

    Attributes:
        seed: its generator seed.
        products: its catalog size.
        where: who uses it, for messages (``"tiny/siamfc_alexnet train.data[0]"``).
    """

    seed: int
    products: int
    where: str


def synth_sources(config_dir: str | os.PathLike[str]) -> list[SynthSource]:
    """Every synthetic source named anywhere in the YAML files under ``config_dir``.

    The files are read as plain YAML, not as recipes, so partials (``_data.yaml``) and
    recipes of any schema (matchers, embedders) all count: any mapping with
    ``kind: synth`` is a source (``seed`` defaults to 0 and ``products`` to 100, as in
    :class:`~matcher.train_config.DataSourceConfig`).

    Raises:
        InvalidArgumentError: a YAML file cannot be read.
    """
    root = Path(config_dir)
    sources = []
    for path in sorted(root.rglob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidArgumentError(f"cannot read {path}: {exc}") from None
        for item in _mappings(data):
            if item.get("kind") == "synth":
                where = f"{path.relative_to(root)} ({item.get('root', '?')})"
                sources.append(
                    SynthSource(
                        seed=int(item.get("seed", 0)),
                        products=int(item.get("products", 100)),
                        where=where,
                    )
                )
    return sources


def _mappings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value)


def check_held_out(
    seed: int, num_products: int, training: Iterable[SynthSource]
) -> tuple[set[int], dict[str, Any]]:
    """Check that a held-out synthetic set shares nothing with the training sources.

    Args:
        seed: the held-out set's seed.
        num_products: its catalog size.
        training: every synthetic source the recipes train or validate on.

    Returns:
        ``(excluded, record)``: the held-out product ids whose brand and product line
        (``family_name``) also occurs in a training catalog (to be left out of
        evaluation), and a JSON-ready record of the check.

    Raises:
        InvalidArgumentError: ``seed`` is the seed of a training source.
    """
    from trainers.data.synth import design_catalog

    sources = list(training)
    for src in sources:
        if src.seed == seed:
            raise InvalidArgumentError(
                f"evaluation seed {seed} is also the seed of {src.where}: its products and "
                "scenes are training data; choose another --seed"
            )
    seen_families: set[str] = set()
    for key in sorted({(s.seed, s.products) for s in sources}):
        seen_families.update(spec.family_name for spec in design_catalog(key[1], seed=key[0]))
    held_out = design_catalog(num_products, seed=seed)
    excluded = {spec.product_id for spec in held_out if spec.family_name in seen_families}
    if excluded:
        logger.warning(
            "%d held-out products share a brand and line with a training catalog; left out",
            len(excluded),
        )
    record = {
        "seed": seed,
        "training_sources": sorted({(s.seed, s.products) for s in sources}),
        "training_seeds_checked": sorted({s.seed for s in sources}),
        "excluded_products": sorted(excluded),
    }
    return excluded, record


def read_dataset_info(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``info`` block of a synthetic dataset's ``annotations.json`` (``{}`` if none).

    Raises:
        InvalidArgumentError: the folder holds no readable ``annotations.json``.
    """
    path = Path(root) / "annotations.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}") from None
    info = document.get("info") if isinstance(document, dict) else None
    return info if isinstance(info, dict) else {}


def ensure_held_out_set(
    root: str | os.PathLike[str],
    *,
    seed: int,
    num_scenes: int,
    num_products: int,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """A held-out synthetic set at ``root``: reused when it matches, else (re)generated.

    An existing set is reused when its seed and catalog size match and it has at least
    ``num_scenes`` scenes (the protocol then takes the first ``num_scenes``); scene
    ``i`` depends only on the seed, so that is the same as generating exactly
    ``num_scenes``.

    Args:
        root: dataset folder.
        seed: generator seed.
        num_scenes: scenes needed.
        num_products: catalog size.
        workers: generator processes.
        progress: generator progress bars.

    Returns:
        The dataset folder.

    Raises:
        InvalidArgumentError: bad counts, or ``root`` exists but is not a synthetic set.
    """
    from trainers.data.synth import generate, is_synth_dataset

    path = Path(root)
    if path.exists() and any(path.iterdir()):
        if not is_synth_dataset(path):
            raise InvalidArgumentError(f"{path} exists and is not a siammatch synthetic dataset")
        info = read_dataset_info(path)
        if (
            info.get("seed") == seed
            and info.get("num_products") == num_products
            and int(info.get("num_scenes", 0)) >= num_scenes
        ):
            return path
    logger.info("generating held-out set %s (seed %d, %d scenes)", path, seed, num_scenes)
    return generate(
        path,
        num_products=num_products,
        num_scenes=num_scenes,
        seed=seed,
        workers=workers,
        overwrite=path.exists(),
        progress=progress,
    )
