"""The training loop: one ``run_step`` for every family, and hooks around it.

``run_step`` takes a collated batch, asks the family's training task
(:mod:`trainers.tasks`) for its losses — for the pair families: targets, the network on
(template, search), the family's loss — and takes an optimizer step
(with gradient clipping, bf16 autocast on GPU, and a skipped step when the loss is not
finite). Everything else — logs, progress bar, validation, checkpoints — is a hook.

Reproducibility and resume: pairs are a pure function of ``(seed, epoch, index)``, target
sampling uses a dedicated generator, the learning rate is a pure function of the step, and
a checkpoint stores weights, optimizer, generator and RNG states; resuming from step ``k``
therefore gives the same weights as never stopping. Under DDP each process takes every
``world_size``-th pair and gradients are averaged; the backbone's DDP wrapper is rebuilt
when it unfreezes (DDP only syncs parameters that required gradients at construction).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

from matcher.checkpoints.io import save_checkpoint
from matcher.config import Recipe
from matcher.errors import ConfigError
from matcher.inference_prep import is_prepared
from trainers.distributed import DistContext, mean_across
from trainers.hooks import HookBase
from trainers.schedule import LRSchedule
from trainers.task_registry import TrainingTask

logger = logging.getLogger(__name__)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of an epoch, starting after ``skip`` of them.

    Args:
        length: items in the epoch (all processes).
        rank / world: this process and the number of processes.
        skip: indices of this process already consumed (mid-epoch resume).
    """

    def __init__(self, length: int, *, rank: int, world: int, skip: int = 0) -> None:
        self.indices = list(range(rank, length, world))[skip:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class Trainer:
    """Trains one matcher network on a pair dataset.

    Args:
        recipe: the resolved recipe (its ``train`` section drives the schedule).
        task: the family's training task (network, batches to losses, validation).
        train_data: training dataset with ``set_epoch``.
        val_data: held-out dataset, or ``None``.
        ctx: distributed context (device, rank).
        out_dir: where checkpoints and logs go.
        hooks: run around each step, in order.
        max_steps: stop after this many steps (default ``epochs * steps_per_epoch``).
        workers: data-loading processes.
    """

    def __init__(
        self,
        *,
        recipe: Recipe,
        task: TrainingTask,
        train_data: Any,
        val_data: Any | None,
        ctx: DistContext,
        out_dir: Path,
        hooks: Sequence[HookBase] = (),
        max_steps: int | None = None,
        workers: int | None = None,
    ) -> None:
        cfg = recipe.train
        if is_prepared(task.net):
            raise ConfigError(
                "this network was prepared for inference (batch norms folded); train a "
                "network from matcher.build or matcher.load(..., prepare=False)"
            )
        self.recipe = recipe
        self.family = recipe.family
        self.task = task
        self.module = task.net.to(ctx.device)
        self.train_data = train_data
        self.val_data = val_data
        self.ctx = ctx
        self.out_dir = Path(out_dir)
        self.batch_size = cfg.batch_size
        self.steps_per_epoch = cfg.steps_per_epoch
        self.max_steps = max_steps if max_steps is not None else cfg.epochs * cfg.steps_per_epoch
        self.log_every = cfg.log_every
        self.workers = cfg.workers if workers is None else workers
        self.step = 0
        self.schedule = LRSchedule(
            base_lr=cfg.base_lr,
            end_lr=cfg.end_lr,
            epochs=cfg.epochs,
            warmup_epochs=cfg.warmup_epochs,
            warmup_start_lr=cfg.warmup_start_lr,
            kind=cfg.lr_schedule,
        )
        self.generator = torch.Generator().manual_seed(cfg.seed + 7919 * ctx.rank)
        self.optimizer = self._optimizer()
        self._frozen: bool | None = None
        self.model: nn.Module = self.module
        self.hooks = list(hooks)
        for hook in self.hooks:
            hook.trainer = self

    # -- set-up ----------------------------------------------------------------------------

    def _backbone_params(self) -> list[nn.Parameter]:
        backbone = getattr(self.module, "backbone", None)
        return list(backbone.parameters()) if backbone is not None else []

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.recipe.train
        backbone = {id(p) for p in self._backbone_params()}
        groups = [
            {"params": [p for p in self.module.parameters() if id(p) in backbone],
             "lr_mult": cfg.backbone_lr_mult, "name": "backbone"},
            {"params": [p for p in self.module.parameters() if id(p) not in backbone],
             "lr_mult": 1.0, "name": "head"},
        ]  # fmt: skip
        groups = [g for g in groups if g["params"]]
        lr = self.schedule(0.0)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def _trainable(self, name: str, frozen: bool) -> bool:
        prefixes = tuple(self.recipe.train.trainable_backbone)
        return not frozen and (not prefixes or name.startswith(prefixes))

    def _apply_modes(self, frozen: bool) -> None:
        """Train mode everywhere except the BatchNorms of frozen backbone parts."""
        self.module.train()
        backbone = getattr(self.module, "backbone", None)
        if backbone is None:
            return
        for name, sub in backbone.named_modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm) and not self._trainable(
                name, frozen
            ):
                sub.eval()

    def _set_frozen(self, frozen: bool) -> None:
        """Freeze or unfreeze the backbone and (re)wrap DDP when that changes."""
        if frozen == self._frozen:
            return
        self._frozen = frozen
        backbone = getattr(self.module, "backbone", None)
        if backbone is not None:
            for name, param in backbone.named_parameters():
                param.requires_grad_(self._trainable(name, frozen))
        self._apply_modes(frozen)
        if self.ctx.distributed:
            device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.model = DistributedDataParallel(
                self.module, device_ids=device_ids, find_unused_parameters=True
            )
        logger.info("backbone %s at step %d", "frozen" if frozen else "trainable", self.step)

    def _loader(self, epoch: int, skip: int) -> DataLoader:
        self.train_data.set_epoch(epoch)
        sampler = ShardSampler(
            len(self.train_data), rank=self.ctx.rank, world=self.ctx.world_size, skip=skip
        )
        return DataLoader(
            self.train_data,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.workers,
            drop_last=True,
            persistent_workers=False,
            pin_memory=self.ctx.device.type == "cuda",
            collate_fn=self.task.collate,
        )

    # -- the step ----------------------------------------------------------------------------

    def run_step(self, batch: Any) -> dict[str, float]:
        """One optimizer step on a batch; returns its scalar metrics."""
        cfg = self.recipe.train
        batch = self.task.to_device(batch, self.ctx.device)
        lr = self.schedule(self.step / self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if cfg.amp and self.ctx.device.type == "cuda"
            else contextlib.nullcontext()
        )
        with autocast:
            losses = self.task.losses(self.model, batch, generator=self.generator)
        losses = {k: v.float() for k, v in losses.items()}
        total = losses["total"]
        self.optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(total))
        if finite:
            total.backward()
            if cfg.grad_clip > 0:
                params = [p for p in self.module.parameters() if p.grad is not None]
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            self.optimizer.step()
        else:
            logger.warning("step %d: loss is not finite, step skipped", self.step)
        metrics = {k: float(v.detach()) for k, v in losses.items()}
        metrics["lr"] = lr
        metrics["skipped"] = 0.0 if finite else 1.0
        return metrics

    # -- running -----------------------------------------------------------------------------

    def train(self) -> None:
        """Run from the current step to ``max_steps`` with the hooks."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._set_frozen(self._epoch() < self.recipe.train.unfreeze_epoch)
        for hook in self.hooks:
            hook.before_train()
        while self.step < self.max_steps:
            epoch = self._epoch()
            done_in_epoch = self.step - epoch * self.steps_per_epoch
            loader = self._loader(epoch, done_in_epoch * self.batch_size)
            for batch in loader:
                self._set_frozen(self._epoch() < self.recipe.train.unfreeze_epoch)
                metrics = self.run_step(batch)
                self.step += 1
                for hook in self.hooks:
                    hook.after_step(metrics)
                if self.step >= self.max_steps or self._epoch() != epoch:
                    break
        for hook in self.hooks:
            hook.after_train()

    def _epoch(self) -> int:
        return self.step // self.steps_per_epoch

    def reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        return mean_across(self.ctx, values)

    def validate(self) -> dict[str, float] | None:
        """Held-out pair metrics (averaged over processes), or ``None`` without val data."""
        if self.val_data is None or len(self.val_data) == 0:
            return None
        loader = DataLoader(
            self.val_data,
            batch_size=self.batch_size,
            sampler=ShardSampler(len(self.val_data), rank=self.ctx.rank, world=self.ctx.world_size),
            num_workers=0,
            collate_fn=self.task.collate,
        )
        metrics = self.task.validate(self.module, loader, self.ctx.device)
        if self._frozen is not None:
            self._apply_modes(self._frozen)  # evaluation switched the whole net to train()
        return self.reduce_mean(metrics)

    # -- checkpoints -------------------------------------------------------------------------

    def training_state(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                          int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python_rng": list(random.getstate()),
            "hooks": [h.state_dict() for h in self.hooks],
        }  # fmt: skip

    def save_checkpoint(self, path: Path) -> None:
        save_checkpoint(
            path, self.module, self.recipe.to_dict(), extra={"training": self.training_state()}
        )

    def save_model(self, path: Path) -> None:
        save_checkpoint(path, self.module, self.recipe.to_dict())

    def resume(self, state: dict[str, Any], model_state: dict[str, torch.Tensor]) -> None:
        """Restore weights and training state saved by :meth:`save_checkpoint`."""
        self.module.load_state_dict(model_state, strict=True)
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        kind, keys, pos, has_gauss, cached = state["numpy_rng"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))
        for hook, hook_state in zip(self.hooks, state.get("hooks", []), strict=False):
            hook.load_state_dict(hook_state)
        logger.info("resumed at step %d", self.step)
