"""The request-validation helpers on their own (the routes' tests cover their use)."""

from __future__ import annotations

import pytest

from api.errors import InvalidBase64Error, MalformedJSONError, MissingFieldError
from api.field_values import (
    metadata,
    optional_box,
    optional_float,
    optional_int,
    product_id,
    recipe_name,
)
from api.request_body import Fields
from matcher.errors import InvalidArgumentError, InvalidBoxError, UnknownComponentError


@pytest.mark.parametrize(
    "value, expected", [(None, None), (3, 3), ("7", 7), (" 2 ", 2), (4.0, 4), ("+5", 5)]
)
def test_optional_int_accepts(value, expected):
    assert optional_int(value, "n", lo=1, hi=10) == expected


@pytest.mark.parametrize("value", [True, 2.5, "2.5", "", "1e3", [1], 0, 11, "99999999999"])
def test_optional_int_refuses(value):
    with pytest.raises(InvalidArgumentError, match="n must"):
        optional_int(value, "n", lo=1, hi=10)


@pytest.mark.parametrize("value, expected", [(None, None), (0, 0.0), ("0.25", 0.25), (1, 1.0)])
def test_optional_float_accepts(value, expected):
    assert optional_float(value, "t", lo=0, hi=1) == expected


@pytest.mark.parametrize("value", [False, "x", "inf", "nan", -0.1, 1.01, {"a": 1}])
def test_optional_float_refuses(value):
    with pytest.raises(InvalidArgumentError, match="t must"):
        optional_float(value, "t", lo=0, hi=1)


def test_optional_box_forms():
    assert optional_box("1, 2, 3, 4", "b") == (1.0, 2.0, 3.0, 4.0)
    assert optional_box([1, 2.5, 3, 4], "b") == (1.0, 2.5, 3.0, 4.0)
    assert optional_box(None, "b") is None
    for bad in ([1, 2, 3], [1, 2, 3, True], "1,2,3,inf", {"x0": 1}):
        with pytest.raises(InvalidBoxError):
            optional_box(bad, "b")


def test_product_id_and_metadata():
    assert product_id("sku-1.2_x") == "sku-1.2_x"
    assert product_id(42) == "42"
    with pytest.raises(MissingFieldError):
        product_id(None)
    with pytest.raises(InvalidArgumentError):
        product_id("../etc")
    assert metadata('{"a": [1, 2]}') == {"a": [1, 2]}
    assert metadata({"a": 1}) == {"a": 1}
    assert metadata(None) == {}
    for bad in ("{", "3", "[]", 5):
        with pytest.raises(MalformedJSONError):
            metadata(bad)


def test_recipe_name_lists_the_offered_recipes():
    assert recipe_name(None, {"a": 1}, "a") == "a"
    with pytest.raises(UnknownComponentError, match="offers: a, b"):
        recipe_name("c", {"b": 1, "a": 1}, "a")


def test_fields_read_json_images(make_app):
    app = make_app()
    with app.test_request_context(
        "/", method="POST", json={"img": "data:image/png;base64,aGVsbG8=", "bad": "a$b"}
    ):
        from flask import request

        fields = Fields(request)
        assert fields.is_json
        assert fields.image_bytes("img") == b"hello"
        assert fields.image_bytes("absent") is None
        with pytest.raises(InvalidBase64Error):
            fields.image_bytes("bad")
