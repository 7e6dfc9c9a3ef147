"""Targets and losses on the real networks' outputs: every family's targets fit the shapes
its network produces, and the loss back-propagates finite gradients through it."""

from __future__ import annotations

import pytest
import torch

from matcher.recipes import load_recipe
from tests.trainers.target_helpers import gen, make_batch
from trainers.losses import compute_loss, loss_weights
from trainers.targets import build_targets, target_geometry


def _network_batch(geo, num: int = 2) -> dict[str, torch.Tensor]:
    x = geo.search_size
    c = (x - 1) / 2
    boxes = [[c - 40, c - 30, c + 40, c + 30], [c - 20, c - 50, c + 30, c + 40]]
    masks = torch.zeros((num, x, x), dtype=torch.uint8)
    masks[:, int(c) - 25 : int(c) + 25, int(c) - 30 : int(c) + 30] = 1
    batch = make_batch(boxes[:num], [1, 0][:num], size=x, masks=masks, has_mask=[True] * num)
    g = gen(11)
    batch["template"] = torch.randint(
        0, 256, (num, 3, geo.exemplar_size, geo.exemplar_size), generator=g
    )
    batch["search"] = torch.randint(0, 256, (num, 3, x, x), generator=g)
    return batch


@pytest.mark.parametrize(
    "name", ["siamfc_alexnet", "siamrpnpp_alexnet", "siamfcpp_alexnet", "siammask_r50"]
)
def test_targets_fit_the_networks_outputs(name):
    from matcher.models.builders import build_siamese_net, build_siammask_net

    recipe = load_recipe(name)
    geo = target_geometry(recipe)
    net = (
        build_siammask_net(recipe.model)
        if recipe.family == "siammask"
        else build_siamese_net(recipe.model)
    )
    net.train()
    batch = _network_batch(geo)
    targets = build_targets(
        recipe.family, batch, geometry=geo, params=recipe.train.targets, generator=gen()
    )
    z, x = batch["template"].float(), batch["search"].float()
    zk, xk = net.encode_template(z), net.encode_search(x)
    outputs = net.correlate(zk, xk)
    if recipe.family == "siammask":
        assert len(targets["mask_positions"]) > 0
        outputs["mask_logits"] = net.mask_logits(zk, xk, targets["mask_positions"])
    got = compute_loss(
        recipe.family,
        outputs,
        targets,
        geometry=geo,
        params=recipe.train.targets,
        weights=loss_weights(recipe.train),
    )
    assert torch.isfinite(got["total"])
    got["total"].backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
