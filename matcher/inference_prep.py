"""Preparing a network for inference: batch norms folded, convolutions packed for the CPU.

At inference a ``BatchNorm2d`` is a fixed per-channel affine map, so a convolution followed
only by one can absorb it (``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g /
sqrt(v + eps) + beta``) and the norm becomes an identity: one pass over the feature map
less per pair, exact to float rounding. :func:`prepare_for_inference` finds the pairs by
tracing each sub-network with ``torch.fx`` (a sub-network that cannot be traced is
searched child by child), folds them in place — the module tree, its attributes and the
other modules' names stay as they were — and marks the network, which the trainer then
refuses: a folded network has no batch statistics left to train.

The Siamese tracker networks (:class:`~matcher.models.SiameseNet`, SiamMask's net) and the
verifier's :class:`~matcher.embedder.Embedder` on the CPU then get their convolutions
swapped for
:class:`~matcher.inference_pack.PackedConv2d` (channels-last, weights kept in oneDNN's
layout): the same parameters, results equal to float rounding, and their feature maps
come out channels-last. Siamese Mask R-CNN keeps plain convolutions (torchvision's heads
``view`` their feature maps, which needs the NCHW layout).

``precision="bf16"`` also makes those convolutions compute in bfloat16 (on any device;
:mod:`matcher.inference_pack`), where the device does bfloat16 in hardware; elsewhere the
network stays float32 and a warning says so.
"""

from __future__ import annotations

import logging

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from matcher.embedder import Embedder
from matcher.inference_config import PRECISIONS
from matcher.inference_pack import (
    PackedConv2d,
    bf16_native,
    pack_convolutions,
    set_compute_dtype,
)
from matcher.models.siamese import SiameseNet
from matcher.models.siammask import SiamMaskNet

logger = logging.getLogger(__name__)

#: The networks whose convolutions :func:`prepare_for_inference` packs.
PACKED_NETWORKS = (SiameseNet, SiamMaskNet, Embedder)
#: Attribute set on a network :func:`prepare_for_inference` changed.
PREPARED = "inference_prepared"


def prepare_for_inference(net: nn.Module, *, precision: str = "fp32") -> int:
    """Fold every convolution → batch-norm pair of ``net`` (put in eval mode) in place,
    then pack the convolutions of a Siamese tracker network or an embedder (see the module
    docstring), computing in ``precision`` (``"fp32"`` or ``"bf16"``).

    Prepare a network on the device it will run on: packing applies to CPU weights, and
    bfloat16 is used only where that device has it in hardware (:func:`bf16_native`).

    Returns:
        The number of batch norms folded.

    Raises:
        ValueError: an unknown ``precision``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    net.eval()
    folded = _fold_tree(net, top=True)
    packed = 0
    if isinstance(net, PACKED_NETWORKS):
        params = next(net.parameters(), None)
        device = params.device if params is not None else torch.device("cpu")
        low = precision == "bf16" and bf16_native(device)
        if precision == "bf16" and not low:
            logger.warning(
                "%s: %s has no bfloat16 arithmetic in hardware (it would run slower than "
                "float32): computing in float32",
                type(net).__name__,
                device,
            )
        packed = pack_convolutions(net, any_device=low)
        if low:
            set_compute_dtype(net, torch.bfloat16)
    setattr(net, PREPARED, True)
    logger.debug(
        "%s: folded %d batch norms, packed %d convolutions, %s",
        type(net).__name__,
        folded,
        packed,
        precision_of(net),
    )
    return folded


def is_prepared(net: nn.Module) -> bool:
    """Whether :func:`prepare_for_inference` changed ``net``."""
    return bool(getattr(net, PREPARED, False))


def precision_of(net: nn.Module) -> str:
    """The precision ``net``'s convolutions compute in: ``"bf16"`` when any of them was set
    to bfloat16 (:func:`prepare_for_inference` with ``precision="bf16"``), else ``"fp32"``."""
    low = any(isinstance(m, PackedConv2d) and m.compute_dtype is not None for m in net.modules())
    return "bf16" if low else "fp32"


def _fold_tree(module: nn.Module, *, top: bool = False) -> int:
    if not any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
        return 0
    if not top:
        graph = _trace(module)
        if graph is not None:
            return _fold_graph(module, graph)
    return sum(_fold_tree(child) for child in module.children())


def _trace(module: nn.Module) -> fx.Graph | None:
    try:
        return fx.Tracer().trace(module)
    except Exception as exc:  # data-dependent control flow and the like: search the children
        logger.debug("not traceable (%s): %s", type(module).__name__, exc)
        return None


def _fold_graph(module: nn.Module, graph: fx.Graph) -> int:
    modules = dict(module.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    folded = 0
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
            continue
        source = node.args[0] if node.args else None
        if not (
            isinstance(source, fx.Node)
            and source.op == "call_module"
            and isinstance(modules.get(source.target), nn.Conv2d)
            and len(source.users) == 1
            and calls[source.target] == 1
            and calls[node.target] == 1
        ):
            continue
        conv, norm = modules[source.target], modules[node.target]
        if not norm.track_running_stats or norm.running_mean is None:
            continue
        with torch.no_grad():
            fused = fuse_conv_bn_eval(conv.eval(), norm.eval())
        _replace(module, source.target, fused)
        _replace(module, node.target, nn.Identity())
        folded += 1
    return folded


def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, new)
