"""The ``--weights RECIPE=PATH`` option that ``benchmarks/since_start.py`` and
``benchmarks/matcher_latency.py`` share (``benchmarks/_common.py``)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks._common import add_weights_option, weights_by_recipe


def _parse(*argv: str) -> dict[str, str]:
    parser = argparse.ArgumentParser(prog="bench")
    add_weights_option(parser)
    return weights_by_recipe(parser, parser.parse_args(list(argv)).weights)


def test_each_weights_value_names_a_recipe_and_its_file():
    got = _parse("--weights", "siamrpnpp_alexnet=runs/a/last.pth", "--weights", "x=/b=c.pth")
    assert got == {"siamrpnpp_alexnet": "runs/a/last.pth", "x": "/b=c.pth"}
    assert _parse() == {}


@pytest.mark.parametrize("value", ["runs/a/last.pth", "=runs/a/last.pth", "siamrpnpp_alexnet="])
def test_a_weights_value_without_recipe_or_path_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse("--weights", value)
    assert exc.value.code == 2
    assert "--weights takes RECIPE=PATH" in capsys.readouterr().err
