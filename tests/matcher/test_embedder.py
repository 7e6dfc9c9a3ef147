"""The embedder: shapes, unit norm, determinism, letterboxing and its files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from matcher.checkpoints.io import save_checkpoint
from matcher.crops import letterbox
from matcher.embedder import (
    Embedder,
    EmbedderSpec,
    build_embedder,
    embedder_fingerprint,
    load_embedder,
    save_embedder,
)
from matcher.errors import CheckpointError, ConfigError, InvalidArgumentError, InvalidImageError
from matcher.models.backbones import build_backbone
from tests.helpers import photo, product_image


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return build_embedder()


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    out = [product_image(k) for k in ("astronaut", "coffee", "rocket", "chelsea")]
    out.append(photo("camera")[:150, :300])  # grey, wide
    out.append(photo("coffee")[:40, :20])  # small, tall
    return out


def test_embed_shape_dtype_and_unit_norm(embedder, images):
    xb = embedder.embed(images, batch_size=4)
    assert xb.shape == (len(images), 256)
    assert xb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(xb, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 256)


def test_embed_is_deterministic_and_batch_independent(embedder, images):
    a = embedder.embed(images, batch_size=32)
    b = embedder.embed(images, batch_size=1)
    np.testing.assert_allclose(a, b, atol=1e-5)
    again = build_embedder().embed(images)  # seeded initialisation: same in every process
    np.testing.assert_allclose(a, again, atol=1e-6)
    assert embedder_fingerprint(embedder) == embedder_fingerprint(build_embedder())
    other = build_embedder(EmbedderSpec(seed=1))
    assert embedder_fingerprint(other) != embedder_fingerprint(embedder)


def test_embed_leaves_training_mode_and_inputs_alone(images):
    emb = build_embedder()
    emb.train()
    before = [img.copy() for img in images]
    emb.embed(images)
    assert emb.training
    for img, orig in zip(images, before, strict=True):
        np.testing.assert_array_equal(img, orig)


def test_rescaled_copy_is_nearest(embedder, images):
    xb = embedder.embed(images[:4])
    xq = embedder.embed([cv2.resize(img, (150, 150)) for img in images[:4]])
    assert (np.argmax(xq @ xb.T, axis=1) == np.arange(4)).all()


def test_embed_refuses_bad_input(embedder):
    with pytest.raises(InvalidImageError):
        embedder.embed([b"not an image"])
    with pytest.raises(InvalidArgumentError):
        embedder.embed([np.zeros((8, 8, 3), np.uint8)], batch_size=0)


def test_letterbox_keeps_aspect_and_pads_with_mean_colour():
    img = np.zeros((50, 100, 3), np.uint8)
    img[:, :50] = 200
    out = letterbox(img, 64)
    assert out.shape == (64, 64, 3)
    mean = np.round(img.reshape(-1, 3).mean(axis=0))
    np.testing.assert_array_equal(out[0, 0], mean)  # padding row above the image
    np.testing.assert_array_equal(out[32, 2], [200, 200, 200])  # left half of the image
    np.testing.assert_array_equal(out[32, 60], [0, 0, 0])  # right half


def test_embed_folder(tmp_path, embedder, images):
    for i, img in enumerate(images[:3]):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), img[:, :, ::-1])
    (tmp_path / "notes.txt").write_text("skip me")
    files, xb = embedder.embed_folder(tmp_path, progress=False)
    assert [f.name for f in files] == ["img0.png", "img1.png", "img2.png"]
    np.testing.assert_allclose(xb, embedder.embed(images[:3]), atol=1e-5)
    with pytest.raises(InvalidArgumentError):
        embedder.embed_folder(tmp_path / "missing")


# -- files --------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, images):
    spec = EmbedderSpec(dim=64, hidden=0, gem_p=2.0, seed=3)
    emb = build_embedder(spec)
    with torch.no_grad():
        emb.pool.p.fill_(4.5)  # a "trained" value that must survive the round trip
    path = save_embedder(tmp_path / "emb.pt", emb)
    loaded = load_embedder(path)
    assert loaded.spec == spec
    assert float(loaded.pool.p.detach()) == pytest.approx(4.5)
    np.testing.assert_allclose(loaded.embed(images), emb.embed(images), atol=1e-6)
    assert embedder_fingerprint(loaded) == embedder_fingerprint(emb)
    assert Embedder.load(emb.save(tmp_path / "again.pt")).spec == spec


def test_load_refuses_wrong_files(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_embedder(text)
    holder = nn.Module()
    holder.backbone = build_backbone("alexnet_v1", used_layers=(), width_mult=0.25, bn_eps=1e-6)
    matcher_file = save_checkpoint(tmp_path / "matcher.pt", holder, {"name": "tiny"})
    with pytest.raises(CheckpointError, match="not an embedder"):
        load_embedder(matcher_file)
    emb = build_embedder()
    state = {k: v for k, v in emb.state_dict().items() if not k.startswith("head.2.")}
    torch.save(
        {
            "format": "siammatch",
            "version": 1,
            "recipe": {"embedder": emb.spec.to_dict()},
            "state_dict": state,
        },
        tmp_path / "partial.pt",
    )
    with pytest.raises(CheckpointError, match="missing"):
        load_embedder(tmp_path / "partial.pt")
    bad_spec = {"format": "siammatch", "version": 1, "recipe": {"embedder": {"colour": 1}}}
    torch.save({**bad_spec, "state_dict": emb.state_dict()}, tmp_path / "spec.pt")
    with pytest.raises(CheckpointError, match="spec"):
        load_embedder(tmp_path / "spec.pt")


def test_backbone_weights_from_a_matcher_checkpoint(tmp_path):
    holder = nn.Module()
    torch.manual_seed(5)
    holder.backbone = build_backbone("alexnet_v1", used_layers=(), width_mult=0.25, bn_eps=1e-6)
    path = save_checkpoint(tmp_path / "matcher.pt", holder, {"name": "tiny"})
    emb = build_embedder(backbone_weights=path)
    for key, value in holder.backbone.state_dict().items():
        torch.testing.assert_close(emb.backbone.state_dict()[key], value)
    wide = EmbedderSpec(width_mult=0.5)
    with pytest.raises(CheckpointError):
        build_embedder(wide, backbone_weights=path)


def test_spec_validation():
    with pytest.raises(ConfigError):
        EmbedderSpec(dim=4)
    with pytest.raises(ConfigError):
        EmbedderSpec.from_dict({"dims": 128})
    spec = EmbedderSpec(used_layers=(1,), input_format="bgr")
    assert EmbedderSpec.from_dict(spec.to_dict()) == spec
