"""The catalog embedder trains through the shared training core (``family: embedder``).

A whole (short) training run of the embedder recipe, and its reproducibility against the
shipped embedder's card, is in ``test_shipped_weights.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matcher.errors import ConfigError
from tests.trainers.conftest import data_overrides
from trainers.embedder import EmbedderRecipe, square_crops
from trainers.tasks import build_task, load_training_recipe


def test_embedder_recipe_loads_with_its_own_schema():
    recipe = load_training_recipe("embedders/default", ["embedder.dim=128", "temperature=0.1"])
    assert isinstance(recipe, EmbedderRecipe)
    assert recipe.embedder.dim == 128 and recipe.temperature == 0.1
    assert recipe.to_dict()["embedder"]["dim"] == 128
    with pytest.raises(ConfigError, match=r"embedder\.dimm"):
        load_training_recipe("embedders/default", ["embedder.dimm=3"])
    with pytest.raises(ConfigError, match="temperature"):
        load_training_recipe("embedders/default", ["temperature=0"])


def test_square_crops_cut_the_box_with_its_context():
    image = torch.zeros(1, 3, 100, 100)
    image[:, :, 40:60, 30:50] = 255.0  # a 20x20 white square at x 30..50, y 40..60
    boxes = torch.tensor([[30.0, 40.0, 50.0, 60.0]])
    tight = square_crops(image, boxes, size=32, context=0.0)
    assert tight.shape == (1, 3, 32, 32)
    assert float(tight[..., 2:-2, 2:-2].min()) > 250.0  # all white inside
    loose = square_crops(image, boxes, size=32, context=1.0)  # 40x40 around the centre
    centre = loose[..., 10:22, 10:22]
    border = torch.cat([loose[..., :6, :].flatten(), loose[..., -6:, :].flatten()])
    assert float(centre.min()) > 250.0 and float(border.max()) < 5.0


def test_one_step_lowers_the_loss_on_a_fixed_batch(synth_sets):
    recipe = load_training_recipe(
        "embedders/default", [*data_overrides(synth_sets, modes=("catalog",)), "train.val_data=[]"]
    )
    torch.manual_seed(0)
    task = build_task(recipe, torch.device("cpu"))
    data = task.build_data(split="train", epoch_length=32)
    data.set_epoch(0)
    batch = torch.utils.data.default_collate([data[i] for i in range(16)])
    optimizer = torch.optim.SGD(task.net.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    before = task.losses(task.net, batch, generator=gen)["total"].detach()
    for _ in range(5):
        optimizer.zero_grad()
        task.losses(task.net, batch, generator=gen)["total"].backward()
        optimizer.step()
    after = task.losses(task.net, batch, generator=gen)["total"].detach()
    assert np.isfinite(float(before)) and float(after) < float(before)
