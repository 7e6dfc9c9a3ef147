"""Checkpoint loading refuses wrong files clearly: another model's weights, wrong shapes,
pickles with code, truncated or foreign files, a recipe's checkpoint for another recipe."""

from __future__ import annotations

import copyreg
import io
import os
import pickle

import pytest
import torch

import matcher
from matcher.checkpoints.io import save_checkpoint
from matcher.errors import CheckpointError
from tests.fixtures import needs_fixtures
from tests.matcher.published_layouts import published_state_dict


@needs_fixtures
def test_another_models_weights_are_refused_with_what_was_found(tmp_path):
    path = tmp_path / "alex.pth"
    torch.save(published_state_dict("siamrpnpp_alexnet"), path)
    with pytest.raises(CheckpointError) as err:
        matcher.load("siamrpnpp_r50", path)
    msg = str(err.value)
    assert "siamrpnpp_r50" in msg and "PySOT" in msg
    assert "PySOT SiamRPN AlexNet" in msg and "missing" in msg


@needs_fixtures
def test_dasiamrpn_weights_into_pysot_recipe_are_refused(tmp_path):
    path = tmp_path / "SiamRPNVOT.model"
    torch.save(published_state_dict("siamrpn_alexnet_upchannel"), path)
    with pytest.raises(CheckpointError, match="DaSiamRPN"):
        matcher.load("siamrpnpp_alexnet", path)


@needs_fixtures
def test_wrong_shapes_are_refused(tmp_path):
    path = tmp_path / "SiamRPNBIG.model"
    torch.save(published_state_dict("siamrpn_alexnet_upchannel_big"), path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        matcher.load("siamrpn_alexnet_upchannel", path)


class _Exploit:
    """Unpickling this would create a file: weights-only loading must refuse it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    torch.save({"backbone.conv1.0.weight": torch.zeros(1), "x": _Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused"):
        matcher.load("siamfc_alexnet", path)
    assert not marker.exists()


def test_truncated_file_is_refused(tmp_path):
    m = matcher.build("siamfc_alexnet")
    good = tmp_path / "good.pth"
    torch.save(m.net.state_dict(), good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        matcher.load("siamfc_alexnet", bad)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"backbone.conv1.0.weight: [0.1, 0.2]\n", "not a PyTorch checkpoint"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a PyTorch checkpoint"),
    ],
)
def test_non_checkpoint_files_are_refused(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        matcher.load("siamfc_alexnet", path)


@pytest.mark.parametrize(
    "payload, message",
    [
        ([torch.zeros(3)], "holds a list"),
        (torch.zeros(3), "holds a Tensor"),
        ({"a": 1, "b": "text"}, "not a plain state dict"),
        ({}, "empty state dict"),
        ({"format": "siammatch", "version": 99, "state_dict": {}}, "format version"),
    ],
)
def test_wrong_contents_are_refused(tmp_path, payload, message):
    path = tmp_path / "weights.pth"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        matcher.load("siamfc_alexnet", path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        matcher.load("siamfc_alexnet", tmp_path / "nope.pth")


def test_external_file_without_recipe_needs_a_recipe(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(matcher.build("siamfc_alexnet").net.state_dict(), path)
    with pytest.raises(CheckpointError, match="name the recipe"):
        matcher.load(None, path)


def test_own_checkpoint_of_another_recipe_is_refused(tmp_path):
    m = matcher.build("siamfc_alexnet")
    path = save_checkpoint(tmp_path / "fc.pth", m.net, m.recipe.to_dict())
    with pytest.raises(CheckpointError, match="siamrpnpp_alexnet"):
        matcher.load("siamrpnpp_alexnet", path)


def test_loading_never_unpickles_arbitrary_globals(tmp_path):
    """A pickle that only references a harmless non-tensor global is still refused."""
    path = tmp_path / "global.pth"
    buf = io.BytesIO()
    pickle.dump({"w": copyreg._reconstructor}, buf, protocol=2)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError):
        matcher.load("siamfc_alexnet", path)
    assert os.path.getsize(path) > 0
