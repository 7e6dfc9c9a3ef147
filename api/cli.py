"""The ``siammatch`` command line.

Sub-commands: ``match`` (find a reference in a scene, :mod:`api.cli_match`), ``track``
(follow a box through frames or a video, :mod:`api.cli_track`), ``recipes`` (list the model
recipes, :mod:`api.cli_recipes`), ``demo`` (a self-contained run on generated images,
:mod:`api.cli_demo`), ``synth`` (generate the synthetic e-commerce dataset,
:mod:`api.cli_synth`) and ``train`` (train a recipe, :mod:`trainers.train`), plus those of
:data:`COMMAND_MODULES`. This module holds the entry point and what the command modules
share (:class:`UsageError`, :func:`model_args`, :func:`load_matcher`). Any user
mistake — a bad path, an unreadable image, a box outside the image, a wrong weights file —
prints one line ``siammatch: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from api.defaults import DEFAULT_RECIPE

logger = logging.getLogger(__name__)


# Modules that add their own sub-commands: each defines ``register(sub)``, which adds
# parsers to the ``add_subparsers`` object and sets ``func`` on them (heavy imports stay
# inside the command functions, so ``siammatch --help`` remains fast). The built-in
# commands' modules (match, track, recipes, demo, synth) are registered before these.
COMMAND_MODULES: tuple[str, ...] = (
    "api.cli_eval",
    "api.cli_serve",
    "api.cli_catalog",
    "api.cli_calibrate",
    "api.cli_track_benchmark",
    "api.cli_synth_video",
)


class UsageError(Exception):
    """A command-line mistake outside the library's own error types."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``siammatch`` console script; returns the exit status."""
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the trainer has its own parser (also used under torchrun)
        from trainers.train import main as train_main

        return train_main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from matcher.errors import SiammatchError

    try:
        return int(args.func(args) or 0)
    except (SiammatchError, UsageError) as exc:
        print(f"siammatch: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"siammatch: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siammatch: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def _parser() -> argparse.ArgumentParser:
    from api import cli_demo, cli_match, cli_recipes, cli_synth, cli_track

    parser = argparse.ArgumentParser(
        prog="siammatch",
        description="One-shot product matching with Siamese networks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    cli_match.register(sub)
    cli_track.register(sub)
    sub.add_parser(
        "train",
        help="train a recipe (see `siammatch train --help`)",
        add_help=False,
    )
    cli_recipes.register(sub)
    cli_demo.register(sub)
    cli_synth.register(sub)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def model_args(
    p: argparse._ActionsContainer,
    *,
    recipe_help: str = f"recipe name or YAML file (default: the recipe stored in a siammatch "
    f"weights file, else {DEFAULT_RECIPE})",
    set_help: str = "recipe override, e.g. inference.match.scale_step=1.2 (repeatable)",
) -> None:
    """Add ``--recipe``, ``--weights``, ``--device`` and ``--set`` (read by
    :func:`load_matcher`) to a parser or argument group."""
    p.add_argument("--recipe", help=recipe_help)
    p.add_argument("--weights", help="weights file (published checkpoint or siammatch file)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=set_help,
    )


def load_matcher(args: argparse.Namespace):
    """The matcher the options of :func:`model_args` name.

    Raises:
        UsageError: ``--weights`` names no file.
    """
    import matcher

    weights = args.weights
    if weights is not None and not os.path.isfile(weights):
        raise UsageError(f"weights file {weights!r} does not exist")
    recipe = args.recipe or (None if weights else DEFAULT_RECIPE)
    return matcher.load_trained(
        recipe,
        weights,
        device=args.device,
        overrides=args.overrides or None,
        hint="pass --weights FILE (a published checkpoint of that model or a siammatch checkpoint)",
    )


if __name__ == "__main__":  # pragma: no cover
    # ``python -m api.cli``: run the importable ``api.cli`` (not this ``__main__`` copy), whose
    # UsageError the command modules raise.
    from api.cli import main as cli_main

    raise SystemExit(cli_main())
