"""Every registered recipe builds, and its network's geometry matches the recipe's."""

from __future__ import annotations

import pytest
import torch

import matcher
from matcher.model_config import score_size

#: Siamese tracker recipes (the detector, family siam_mask_rcnn, has test_siam_mask_rcnn.py).
TRACKERS = [n for n in matcher.list_recipes() if matcher.load_recipe(n).inference.track]


@pytest.mark.parametrize("name", TRACKERS)
def test_recipe_geometry_matches_the_network(name):
    m = matcher.build(name)
    model = m.recipe.model
    z = torch.zeros(2, 3, model.exemplar_size, model.exemplar_size)
    x = torch.zeros(2, 3, model.instance_size, model.instance_size)
    with torch.no_grad():
        out = m.net(z, x)
    size = score_size(model, model.instance_size)
    for value in out.values():
        assert value.shape[0] == 2 and tuple(value.shape[-2:]) == (size, size)
    # A larger search by k strides grows the map by k cells at the same offset.
    x = torch.zeros(1, 3, model.instance_size + 3 * model.stride, model.instance_size)
    with torch.no_grad():
        out = m.net(z[:1], x)
    for value in out.values():
        assert tuple(value.shape[-2:]) == (size + 3, size)
    assert m.geometry.cells(model.instance_size) == size
    # The smallest search the geometry allows (coarse-to-fine refinement windows) shrinks
    # the map by whole cells at the same offset.
    small = m.geometry.min_instance_size
    assert model.exemplar_size <= small <= model.instance_size
    x = torch.zeros(1, 3, small, model.instance_size)
    with torch.no_grad():
        out = m.net(z[:1], x)
    want = m.geometry.cells(small)
    assert want >= 1 and want == size - (model.instance_size - small) // model.stride
    for value in out.values():
        assert tuple(value.shape[-2:]) == (want, size)
    if model.neck.name == "adjust" and small - model.stride >= model.exemplar_size:
        # one stride less and the neck would crop the search map as a template's
        x = torch.zeros(1, 3, small - model.stride, small - model.stride)
        with torch.no_grad():
            out = m.net(z[:1], x)
        assert any(v.shape[-1] != want - 1 for v in out.values())


@pytest.mark.parametrize("name", TRACKERS)
def test_template_encoding_is_reused_and_batched(name):
    """encode_template once, correlate with several searches or many templates."""
    m = matcher.build(name)
    model = m.recipe.model
    torch.manual_seed(0)
    z = torch.rand(3, 3, model.exemplar_size, model.exemplar_size) * 255
    x = torch.rand(1, 3, model.instance_size, model.instance_size) * 255
    with torch.no_grad():
        zk = m.net.encode_template(z)
        xk = m.net.encode_search(x)
        together = m.net.correlate(zk, xk)
        for i in range(3):
            alone = m.net.correlate([t[i : i + 1] for t in zk], xk)
            for key in alone:
                torch.testing.assert_close(
                    together[key][i : i + 1], alone[key], rtol=1e-4, atol=1e-4
                )
