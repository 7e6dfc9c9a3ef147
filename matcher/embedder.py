"""The embedder: image -> L2-normalised vector, for catalog retrieval (FAISS, in
:mod:`index`) and for the verification stage of a matcher (:mod:`matcher.inference.verify`).

An :class:`Embedder` is a matcher backbone (any name in
:data:`matcher.models.backbones.BACKBONES`), generalised-mean (GeM) pooling with a
learnable exponent ``p``, and a projection head (one linear layer, or a two-layer MLP) to
``dim`` values, L2-normalised. Its numbers live in an :class:`EmbedderSpec`; the only code
that turns a spec into a module is :func:`build_embedder`.

The default spec is CPU-friendly: the tiny recipes' AlexNetV1 at a quarter width on
128x128 letterboxed inputs (a 6x6x64 map), about 0.15 M parameters. Its input convention
is the matchers': raw ``0..255`` values in the spec's channel order, so a trained matcher's
backbone can be loaded into it (``build_embedder(spec, backbone_weights=...)``).
Un-trained, its random-feature vectors still find exact and near-exact copies of catalog
images; training with :func:`trainers.losses.contrastive.info_nce` on same-product pairs
makes it invariant to the scene's changes. Its crops (:func:`~matcher.crops.letterbox`,
:func:`~matcher.crops.square_crop`) are in :mod:`matcher.crops`.

Files are this project's checkpoints (:func:`matcher.checkpoints.io.save_checkpoint`) with
the spec stored under ``recipe["embedder"]``; they load strictly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from matcher.checkpoints.io import FORMAT_NAME, fit_state_dict, read_checkpoint, save_checkpoint
from matcher.checkpoints.layouts import get_layout
from matcher.checkpoints.shipped import SHIPPED_WEIGHTS_DIR
from matcher.checks import check_float, check_int
from matcher.crops import letterbox
from matcher.errors import CheckpointError, ConfigError, InvalidArgumentError
from matcher.images import ImageLike, ImageLimits, load_image
from matcher.models.backbones import build_backbone

logger = logging.getLogger(__name__)

#: File suffixes :meth:`Embedder.embed_folder` reads.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: Key of the spec inside a checkpoint's ``recipe`` entry.
SPEC_KEY = "embedder"

#: What :meth:`Embedder.embed` accepts: the default pixel and side limits, any aspect
#: ratio (it embeds crops of boxes, which may be thin; letterboxing bounds their cost).
CROP_LIMITS = ImageLimits(max_aspect=math.inf)

#: Most images per forward pass :meth:`Embedder.embed` accepts.
MAX_BATCH = 100_000


@dataclass(frozen=True)
class EmbedderSpec:
    """Everything needed to rebuild an :class:`Embedder` (saved with its weights).

    Attributes:
        backbone: registered backbone name.
        width_mult: backbone channel multiplier.
        bn_eps: backbone BatchNorm epsilon.
        used_layers: backbone outputs to compute; the last one is pooled.
        input_format: channel order the backbone expects, ``"rgb"`` or ``"bgr"``.
        input_size: side of the square letterboxed input, pixels.
        dim: output vector length.
        hidden: width of the projection MLP's hidden layer; 0 means one linear layer.
        gem_p: initial GeM exponent (1 = average pooling, large = max pooling).
        seed: seed of the weight initialisation (so a fresh default embedder is the same
            in every process).
    """

    backbone: str = "alexnet_v1"
    width_mult: float = 0.25
    bn_eps: float = 1e-6
    used_layers: tuple[int, ...] = ()
    input_format: Literal["rgb", "bgr"] = "rgb"
    input_size: int = 128
    dim: int = 256
    hidden: int = 512
    gem_p: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.input_format not in ("rgb", "bgr"):
            raise ConfigError(
                f"embedder input_format must be rgb or bgr, not {self.input_format!r}"
            )
        bad = ConfigError
        check_float("embedder width_mult", self.width_mult, 0.0, 4.0, open_low=True, error=bad)
        check_float("embedder bn_eps", self.bn_eps, 0.0, 1.0, open_low=True, error=bad)
        check_int("embedder input_size", self.input_size, 16, 1024, error=bad)
        check_int("embedder dim", self.dim, 16, 8192, error=bad)
        check_int("embedder hidden", self.hidden, 0, 65536, error=bad)
        check_float("embedder gem_p", self.gem_p, 1.0, 100.0, error=bad)
        check_int("embedder seed", self.seed, 0, 2**63 - 1, error=bad)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (stored in checkpoints and catalogs)."""
        out = dataclasses.asdict(self)
        out["used_layers"] = list(self.used_layers)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedderSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: unknown keys or bad values.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"an embedder spec must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown embedder spec key(s): {', '.join(unknown)}")
        values = dict(data)
        if "used_layers" in values:
            values["used_layers"] = tuple(int(v) for v in values["used_layers"])
        return cls(**values)


class GeM(nn.Module):
    """Generalised-mean pooling ``(mean(x^p))^(1/p)`` over the spatial axes.

    Args:
        p: initial exponent (learnable).
        eps: floor of the activations (GeM needs non-negative inputs).
    """

    def __init__(self, p: float = 3.0, *, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, C)``."""
        p = self.p.clamp(min=1.0)
        return x.clamp(min=self.eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


class Embedder(nn.Module):
    """Backbone -> GeM -> projection -> L2 normalisation.

    Args:
        backbone: returns a list of feature maps; the last one is pooled. Needs an
            ``out_channels`` list like the registered backbones.
        spec: the numbers (input size and format, ``dim``, ``hidden``, ``gem_p``).
    """

    def __init__(self, backbone: nn.Module, *, spec: EmbedderSpec) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        channels = int(backbone.out_channels[-1])
        self.pool = GeM(spec.gem_p)
        if spec.hidden:
            self.head = nn.Sequential(
                nn.Linear(channels, spec.hidden),
                nn.ReLU(inplace=True),
                nn.Linear(spec.hidden, spec.dim),
            )
        else:
            self.head = nn.Sequential(nn.Linear(channels, spec.dim))

    @property
    def dim(self) -> int:
        """Length of the output vectors."""
        return self.spec.dim

    @property
    def device(self) -> torch.device:
        """Where the parameters are."""
        return next(self.parameters()).device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` float ``0..255`` in ``spec.input_format`` -> ``(N, dim)``, unit norm."""
        feats = self.backbone(images)[-1]
        return F.normalize(self.head(self.pool(feats)), dim=1)

    # -- inference -------------------------------------------------------------------------

    def preprocess(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Letterbox images to the input size: ``(N, 3, S, S)`` float on the embedder's device.

        Each image is resized so that its longer side is ``S`` and padded with its own mean
        colour, centred.
        """
        size = self.spec.input_size
        batch = np.stack([letterbox(load_image(img, limits=CROP_LIMITS), size) for img in images])
        if self.spec.input_format == "bgr":
            batch = batch[..., ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
        return tensor.to(self.device, torch.float32)

    def embed(
        self, images: Sequence[ImageLike], *, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """Embed images (in eval mode, without gradients).

        Args:
            images: ``HxWx3`` uint8 RGB arrays, or anything :func:`matcher.load_image` reads.
            batch_size: images per forward pass.
            progress: show a tqdm progress bar.

        Returns:
            ``(N, dim)`` float32, rows of unit L2 norm.

        Raises:
            InvalidImageError: an image cannot be read.
            InvalidArgumentError: ``batch_size`` < 1.
        """
        size = check_int("batch_size", batch_size, 1, MAX_BATCH)
        return self._embed_batches(_chunks(list(images), size), len(images), progress)

    def embed_folder(
        self, folder: str | os.PathLike, *, batch_size: int = 32, progress: bool = True
    ) -> tuple[list[Path], np.ndarray]:
        """Embed every image file directly inside ``folder`` (sorted by name).

        Returns:
            The files and their ``(N, dim)`` float32 vectors, in the same order.

        Raises:
            InvalidArgumentError: ``folder`` is not a folder.
            InvalidImageError: a file cannot be read.
        """
        root = Path(folder)
        if not root.is_dir():
            raise InvalidArgumentError(f"{str(root)!r} is not a folder")
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        size = check_int("batch_size", batch_size, 1, MAX_BATCH)
        vectors = self._embed_batches(_chunks(files, size), len(files), progress)
        return files, vectors

    def _embed_batches(
        self, batches: Iterator[list[ImageLike]], total: int, progress: bool
    ) -> np.ndarray:
        from tqdm import tqdm

        out = np.zeros((total, self.dim), np.float32)
        was_training = self.training
        self.eval()
        try:
            bar = tqdm(total=total, desc="embedding", unit="img", disable=not progress)
            start = 0
            with torch.inference_mode(), bar:
                for batch in batches:
                    vectors = self(self.preprocess(batch)).float().cpu().numpy()
                    out[start : start + len(batch)] = vectors
                    start += len(batch)
                    bar.update(len(batch))
        finally:
            self.train(was_training)
        return out

    # -- files -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write this embedder to a siammatch checkpoint (atomically); see :func:`save_embedder`."""
        return save_embedder(path, self)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Embedder:
        """Read an embedder checkpoint; see :func:`load_embedder`."""
        return load_embedder(path, device=device)


# -- building and files --------------------------------------------------------------------


def build_embedder(
    spec: EmbedderSpec | None = None,
    *,
    backbone_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> Embedder:
    """Build an embedder from its spec, with a seeded (reproducible) initialisation.

    Args:
        spec: the numbers; ``None`` for the default :class:`EmbedderSpec`.
        backbone_weights: optionally, a siammatch matcher checkpoint whose ``backbone.*``
            tensors (same backbone, width and layers) initialise the backbone.
        device: where the module goes.

    Raises:
        UnknownComponentError: unknown backbone name.
        CheckpointError: ``backbone_weights`` is unreadable or does not fit.
    """
    spec = spec or EmbedderSpec()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        backbone = build_backbone(
            spec.backbone,
            used_layers=spec.used_layers,
            width_mult=spec.width_mult,
            bn_eps=spec.bn_eps,
        )
        embedder = Embedder(backbone, spec=spec)
    if backbone_weights is not None:
        ckpt = read_checkpoint(backbone_weights)
        prefix = "backbone."
        state = {k[len(prefix) :]: v for k, v in ckpt.state_dict.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{Path(backbone_weights).name} holds no backbone.* tensors")
        fitted = fit_state_dict(
            embedder.backbone,
            state,
            layout=get_layout(FORMAT_NAME),
            recipe_name=f"embedder backbone {spec.backbone}",
            source=Path(backbone_weights).name,
        )
        embedder.backbone.load_state_dict(fitted, strict=True)
    return embedder.to(device)


#: The trained default embedder shipped with the project (see its JSON card next to it).
SHIPPED_EMBEDDER = SHIPPED_WEIGHTS_DIR / "embedder_default.pth"


def default_embedder(*, device: str | torch.device = "cpu") -> Embedder:
    """The embedder a new catalog gets: the shipped trained one when the project has it
    (``weights/embedder_default.pth``), else the seeded untrained default spec."""
    if SHIPPED_EMBEDDER.is_file():
        return load_embedder(SHIPPED_EMBEDDER, device=device)
    logger.warning("no shipped embedder at %s; using an untrained one", SHIPPED_EMBEDDER)
    return build_embedder(device=device)


def save_embedder(path: str | os.PathLike, embedder: Embedder) -> Path:
    """Write ``embedder`` and its spec to a siammatch checkpoint (temp file + rename)."""
    return save_checkpoint(path, embedder, {SPEC_KEY: embedder.spec.to_dict()})


def load_embedder(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Embedder:
    """Read an embedder checkpoint written by :func:`save_embedder`, strictly.

    Raises:
        CheckpointError: unreadable, not a siammatch file, a matcher (not embedder)
            checkpoint, a bad spec, or tensors that do not fit the spec's module.
    """
    name = Path(path).name
    ckpt = read_checkpoint(path)
    recipe = ckpt.recipe if ckpt.source_format == FORMAT_NAME else None
    if not isinstance(recipe, dict) or SPEC_KEY not in recipe:
        what = "a matcher checkpoint" if isinstance(recipe, dict) else "not a siammatch file"
        raise CheckpointError(
            f"{name} is not an embedder checkpoint ({what} without an embedder spec)"
        )
    try:
        spec = EmbedderSpec.from_dict(recipe[SPEC_KEY])
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{name} holds an invalid embedder spec: {exc}") from None
    embedder = build_embedder(spec)
    fitted = fit_state_dict(
        embedder,
        ckpt.state_dict,
        layout=get_layout(FORMAT_NAME),
        recipe_name="embedder",
        source=name,
    )
    embedder.load_state_dict(fitted, strict=True)
    return embedder.to(device).eval()


def embedder_fingerprint(embedder: Embedder) -> str:
    """A hex digest of the spec and every tensor: equal iff the embedders compute the same."""
    digest = hashlib.sha256(json.dumps(embedder.spec.to_dict(), sort_keys=True).encode())
    for key, value in sorted(embedder.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
