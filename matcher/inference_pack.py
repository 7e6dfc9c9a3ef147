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

**bfloat16.** With ``compute_dtype`` set to ``torch.bfloat16`` (:func:`set_compute_dtype`,
the recipe's ``inference.precision: bf16``), an inference call rounds its input and the
weights (converted once and kept) to bfloat16, convolves with float32 accumulation and
returns float32, so every other layer still runs in float32. On a CPU with AMX or
AVX512-BF16 oneDNN then runs 4-8x faster per convolution (a 256-channel 3x3 layer on a
31x31 map: 5.6 vs 0.8 ms on one core); the price is bfloat16's 8-bit mantissa: about 1 %
relative error at the heads of the trained default and of the AlexNet parity fixture,
outside the float32 parity tolerances, and far more in deep networks that amplify
rounding (the random-weight ResNet-50 and MobileNetV2 fixtures: 30-65 %). A device
without native bfloat16 arithmetic would run slower than in float32: :func:`bf16_native`
says whether this one has it.

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
import torch.nn.functional as F
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
        packed.compute_dtype = None
        packed._reset_cache()
        return packed

    def _reset_cache(self) -> None:
        self._packed: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._seen: OrderedDict[tuple, None] = OrderedDict()
        self._packed_for: tuple[int, int] | None = None
        self._low: tuple[tuple, torch.Tensor, torch.Tensor | None] | None = None
        self._lock = threading.Lock()  # the service calls one network from many threads

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in _CACHE}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("compute_dtype", None)
        self._reset_cache()

    def _inference_call(self, x: torch.Tensor) -> bool:
        """An eval-mode float32 call that autograd does not record (what both the packed and
        the bfloat16 path need)."""
        w = self.weight
        return (
            not self.training
            and x.dtype == torch.float32
            and w.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
        )

    def _fast_path(self, x: torch.Tensor) -> bool:
        return (
            self._inference_call(x)
            and x.dim() == 4
            and x.device.type == "cpu"
            and self.weight.device.type == "cpu"
        )

    def _weight_owner(self) -> tuple[int, int]:
        """What identifies the weight's current values: its storage and version."""
        return self.weight.data_ptr(), self.weight._version

    def _weight_for(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The packed weight for an input ``shape``, or the plain one when not (yet) packed."""
        with self._lock:
            return self._cached_weight(shape)

    def _cached_weight(self, shape: tuple[int, ...]) -> torch.Tensor:
        w = self.weight
        owner = self._weight_owner()
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

    def _low_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight and bias in ``compute_dtype``, converted once per weight version."""
        w = self.weight
        owner = (*self._weight_owner(), w.device, self.compute_dtype)
        with self._lock:
            if self._low is None or self._low[0] != owner:
                memory = torch.channels_last if w.device.type == "cpu" else torch.preserve_format
                low_w = w.detach().to(self.compute_dtype, memory_format=memory)
                low_b = None if self.bias is None else self.bias.detach().to(self.compute_dtype)
                self._low = (owner, low_w, low_b)
            return self._low[1], self._low[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compute_dtype is not None and self._inference_call(x):
            weight, bias = self._low_weights()
            memory = torch.channels_last if x.device.type == "cpu" else torch.preserve_format
            y = F.conv2d(
                x.to(self.compute_dtype, memory_format=memory),
                weight,
                bias,
                self.stride,
                self.padding,
                self.dilation,
                self.groups,
            )
            return y.to(torch.float32)
        if not self._fast_path(x):
            return super().forward(x)
        x = x.contiguous(memory_format=torch.channels_last)
        weight = self._weight_for(tuple(x.shape))
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, *self._geometry(), "none", [], ""
        )


#: The attributes of the packed-weight cache (not copied, not pickled).
_CACHE = ("_packed", "_seen", "_packed_for", "_low", "_lock")


def _packable(conv: nn.Module, *, any_device: bool) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and (any_device or conv.weight.device.type == "cpu")
        and conv.weight.dtype == torch.float32
    )


def pack_convolutions(net: nn.Module, *, any_device: bool = False) -> int:
    """Replace every plain CPU float32 ``nn.Conv2d`` of ``net`` by a :class:`PackedConv2d`
    sharing its parameters (a convolution reached by several names stays one module).

    Args:
        any_device: also replace convolutions on other devices (for
            :func:`set_compute_dtype`; only the CPU's are packed), and do so where this
            torch build lacks oneDNN.

    Returns:
        The number of convolutions replaced (0 where oneDNN is missing, unless
        ``any_device``).
    """
    if not (any_device or packing_available()):
        return 0
    replaced: dict[int, PackedConv2d] = {}
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in replaced:
                setattr(parent, name, replaced[id(child)])
            elif _packable(child, any_device=any_device):
                replaced[id(child)] = PackedConv2d.from_conv(child)
                setattr(parent, name, replaced[id(child)])
    return len(replaced)


def set_compute_dtype(net: nn.Module, dtype: torch.dtype | None) -> int:
    """Make the :class:`PackedConv2d` of ``net`` compute in ``dtype`` (``torch.bfloat16``)
    at inference, or in float32 again (``None``); returns how many it set.

    Depth-wise convolutions (one group per input channel, as in MobileNetV2) stay float32:
    they are memory-bound, and in bfloat16 they ran no faster here (0.7-2x the time of
    the packed float32 one, with the conversions).
    """
    if dtype not in (None, torch.bfloat16):
        raise ValueError(f"compute dtype must be bfloat16 or None, got {dtype}")
    count = 0
    for module in net.modules():
        if isinstance(module, PackedConv2d):
            depthwise = module.groups > 1 and module.groups == module.in_channels
            module.compute_dtype = None if depthwise else dtype
            count += not depthwise
    return count


def bf16_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` does bfloat16 arithmetic in hardware (a CPU with AMX or
    AVX512-BF16 as oneDNN sees it; a CUDA GPU of compute capability 8.0 or later)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
