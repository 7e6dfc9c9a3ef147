"""Convolutions that keep their weights in oneDNN's own layout, for CPU inference.

An eager ``nn.Conv2d`` on the CPU hands oneDNN a plain ``(O, I, kh, kw)`` weight, which
oneDNN reorders into its blocked layout on every call, and runs on NCHW feature maps,
for which its kernels are slower than for channels-last (NHWC) ones. A
:class:`PackedConv2d` runs channels-last and reorders its weight once per input shape
(the blocked layout oneDNN picks depends on the shape), keeping the packed copy for the
calls that follow: the tracker's search crop, the same shape every frame, then skips
both the reorder and the layout conversion. It computes the same sums as the eager
convolution in another order, so results agree to float rounding (about 1e-6
relative), and the outputs are channels-last tensors (same shape and values; only the
strides differ).

A shape is packed the second time it is seen, so a one-off shape (a template encoded
once) costs no memory, and at most :data:`MAX_PACKED` shapes are kept per convolution
(the least recently used goes first). The packed weight is a cache: it follows the
weight (changing the weight, e.g. by ``load_state_dict``, packs again), is dropped when
the module is copied or pickled, and is skipped outside CPU float32 inference (a GPU,
another dtype, training mode, or autograd recording): there the module is a plain
``nn.Conv2d``.

:func:`pack_convolutions` swaps a network's ``nn.Conv2d`` for these in place (the
parameters are the same objects, so state dicts keep their keys).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Packed weights kept per convolution (one per input shape).
MAX_PACKED = 2
#: Input shapes remembered per convolution to decide what to pack.
MAX_SEEN = 8


def packing_available() -> bool:
    """Whether this torch build has the oneDNN convolution ops :class:`PackedConv2d` uses."""
    return (
        torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
    )


class PackedConv2d(nn.Conv2d):
    """``nn.Conv2d`` running channels-last with its weight packed for oneDNN (CPU, float32,
    eval, no autograd); anywhere else, the plain convolution.

    Build one with :meth:`from_conv`; its parameters are the given convolution's.
    """

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PackedConv2d:
        """A packed convolution sharing ``conv``'s parameters and settings."""
        packed = cls.__new__(cls)
        packed.__dict__.update(conv.__dict__)  # parameters, buffers, hooks and settings
        packed._parameters = dict(conv._parameters)
        packed._buffers = dict(conv._buffers)
        packed._modules = dict(conv._modules)
        packed._reset_cache()
        return packed

    def _reset_cache(self) -> None:
        self._packed: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._seen: OrderedDict[tuple, None] = OrderedDict()
        self._packed_for: tuple[int, int] | None = None
        self._lock = threading.Lock()  # the service calls one network from many threads

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in _CACHE}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._reset_cache()

    def _fast_path(self, x: torch.Tensor) -> bool:
        w = self.weight
        return (
            not self.training
            and x.dim() == 4
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and w.dtype == torch.float32
            and w.device.type == "cpu"
            and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
        )

    def _weight_for(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The packed weight for an input ``shape``, or the plain one when not (yet) packed."""
        with self._lock:
            return self._cached_weight(shape)

    def _cached_weight(self, shape: tuple[int, ...]) -> torch.Tensor:
        w = self.weight
        owner = (w.data_ptr(), w._version)
        if owner != self._packed_for:  # new or changed weight: forget the packed copies
            self._packed.clear()
            self._packed_for = owner
        packed = self._packed.get(shape)
        if packed is not None:
            self._packed.move_to_end(shape)
            return packed
        if shape not in self._seen:
            self._seen[shape] = None
            if len(self._seen) > MAX_SEEN:
                self._seen.popitem(last=False)
            return w.detach()
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            w.detach(), *self._geometry(), list(shape)
        )
        self._packed[shape] = packed
        if len(self._packed) > MAX_PACKED:
            self._packed.popitem(last=False)
        return packed

    def _geometry(self) -> tuple[list[int], list[int], list[int], int]:
        return list(self.padding), list(self.stride), list(self.dilation), self.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fast_path(x):
            return super().forward(x)
        x = x.contiguous(memory_format=torch.channels_last)
        weight = self._weight_for(tuple(x.shape))
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, *self._geometry(), "none", [], ""
        )


#: The attributes of the packed-weight cache (not copied, not pickled).
_CACHE = ("_packed", "_seen", "_packed_for", "_lock")


def _packable(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and conv.weight.device.type == "cpu"
        and conv.weight.dtype == torch.float32
    )


def pack_convolutions(net: nn.Module) -> int:
    """Replace every plain CPU float32 ``nn.Conv2d`` of ``net`` by a :class:`PackedConv2d`
    sharing its parameters (a convolution reached by several names stays one module).

    Returns:
        The number of convolutions replaced (0 where oneDNN is missing).
    """
    if not packing_available():
        return 0
    replaced: dict[int, PackedConv2d] = {}
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in replaced:
                setattr(parent, name, replaced[id(child)])
            elif _packable(child):
                replaced[id(child)] = PackedConv2d.from_conv(child)
                setattr(parent, name, replaced[id(child)])
    return len(replaced)
