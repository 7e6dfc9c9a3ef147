"""``siammatch recipes``: list the model recipes and the classical baselines.

One line per recipe (name, family, description), the ``tiny`` CI recipes included, then
the OpenCV baselines, which need no weights.
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``recipes`` sub-command to the ``siammatch`` parser."""
    p = sub.add_parser("recipes", help="list the model recipes")
    p.set_defaults(func=cmd_recipes)


def cmd_recipes(args: argparse.Namespace) -> int:
    """Run ``siammatch recipes``; returns the exit status."""
    from matcher.builder import BASELINES
    from matcher.recipes import list_recipes, load_recipe

    rows = [(name, load_recipe(name)) for name in list_recipes()]
    rows += [(name, load_recipe(name)) for name in list_recipes("tiny")]
    width = max(len(r.family) for _, r in rows)
    for name, recipe in rows:
        print(f"{name:34s} {recipe.family:{width}s} {recipe.description}")
    for name in sorted(BASELINES):
        print(f"{name:34s} {'baseline':{width}s} classical matcher (OpenCV), no weights")
    return 0
