"""Process-group set-up for ``torchrun`` (DDP), and the single-process fallback.

``torchrun --nproc_per_node K -m trainers.train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous variables; :func:`setup` then joins the group with NCCL
when CUDA is available and gloo otherwise (CPU, or mixed). Without those variables training
runs as one ordinary process — no launcher needed (PySOT's ``KeyError: 'RANK'`` trap).
Multi-node runs use torchrun's own rendezvous (``--nnodes``, ``--rdzv-endpoint``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands.

    Attributes:
        rank / world_size / local_rank: as set by torchrun (0 / 1 / 0 alone).
        device: this process's device.
        backend: ``"nccl"``, ``"gloo"`` or ``None`` (single process).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistContext:
    """Join the process group if launched by torchrun, and pick this process's device.

    Args:
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    backend = None
    if world > 1:
        backend = "nccl" if use_cuda else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        logger.info("rank %d/%d joined the %s group on %s", rank, world, backend, dev)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend)


def teardown(ctx: DistContext) -> None:
    """Leave the process group."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def mean_across(ctx: DistContext, values: dict[str, float]) -> dict[str, float]:
    """Average scalar values over the processes (for logging)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    t /= ctx.world_size
    return dict(zip(keys, t.tolist(), strict=True))
