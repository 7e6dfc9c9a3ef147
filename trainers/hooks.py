"""Training hooks: everything around the step — logs, progress, validation, checkpoints.

A hook sees the :class:`~trainers.loop.Trainer` (``self.trainer``) and is called
``before_train``, ``after_step(metrics)`` and ``after_train``; hooks that need to survive
a resume expose ``state_dict``/``load_state_dict``, stored in the checkpoint. Only the main
process writes files or prints; every process takes part in validation reductions.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:  # pragma: no cover
    from trainers.loop import Trainer

logger = logging.getLogger(__name__)


class HookBase:
    """Base class: every method is an optional no-op."""

    trainer: Trainer

    def before_train(self) -> None:
        """Called once before the first step (after any resume)."""

    def after_step(self, metrics: dict[str, float]) -> None:
        """Called after every optimizer step with that step's scalar metrics."""

    def after_train(self) -> None:
        """Called once after the last step."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class ProgressHook(HookBase):
    """A tqdm bar over the run (main process only)."""

    def before_train(self) -> None:
        t = self.trainer
        self.bar = tqdm(
            total=t.max_steps,
            initial=t.step,
            desc=f"train {t.recipe.name}",
            unit="step",
            disable=not t.ctx.is_main,
            dynamic_ncols=True,
        )

    def after_step(self, metrics: dict[str, float]) -> None:
        self.bar.update(1)
        if self.trainer.step % max(1, self.trainer.log_every) == 0:
            shown = {k: f"{v:.4g}" for k, v in metrics.items() if k in ("total", "lr")}
            self.bar.set_postfix(shown)

    def after_train(self) -> None:
        self.bar.close()


class MetricsLogHook(HookBase):
    """Averages step metrics over ``every`` steps and writes them to ``metrics.csv`` and
    TensorBoard (``tb/``), with throughput in pairs per second (all processes).

    Args:
        every: steps per logged row.
        tensorboard: also write TensorBoard event files.
    """

    def __init__(self, *, every: int, tensorboard: bool = True) -> None:
        self.every = max(1, every)
        self.tensorboard = tensorboard
        self._sums: dict[str, float] = {}
        self._count = 0
        self._writer = None
        self._t0 = time.perf_counter()

    def before_train(self) -> None:
        t = self.trainer
        self._t0 = time.perf_counter()
        if t.ctx.is_main:
            self.path = t.out_dir / "metrics.csv"
            if self.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(t.out_dir / "tb"), purge_step=t.step)

    def after_step(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        self._count += 1
        if self.trainer.step % self.every == 0:
            self.flush()

    def log_values(self, values: dict[str, float]) -> None:
        """Write extra values (e.g. validation) at the current step."""
        self._write({"step": self.trainer.step, **values})

    def flush(self) -> None:
        if self._count == 0:
            return
        t = self.trainer
        means = {k: v / self._count for k, v in self._sums.items()}
        means = t.reduce_mean(means)
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        means["pairs_per_s"] = self._count * t.batch_size * t.ctx.world_size / elapsed
        means["epoch"] = t.step / t.steps_per_epoch
        self._write({"step": t.step, **means})
        self._sums, self._count, self._t0 = {}, 0, time.perf_counter()

    def _write(self, row: dict[str, float]) -> None:
        if not self.trainer.ctx.is_main:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(["step", "key", "value"])
            for key, value in row.items():
                if key != "step":
                    writer.writerow([row["step"], key, f"{value:.6g}"])
        if self._writer is not None:
            for key, value in row.items():
                if key != "step":
                    self._writer.add_scalar(key, value, row["step"])
            self._writer.flush()

    def after_train(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()


class ValidationHook(HookBase):
    """Held-out metrics of the task (for pairs: mean IoU, success AUC) every ``every``
    steps and at the end; keeps the best value of the task's ``primary_metric`` and logs
    through :class:`MetricsLogHook`.

    Args:
        every: steps between validations (0: only at the end).
        log: where to write the values.
    """

    def __init__(self, *, every: int, log: MetricsLogHook | None) -> None:
        self.every = every
        self.log = log
        self.best = -1.0
        self.history: list[tuple[int, dict[str, float]]] = []

    def after_step(self, metrics: dict[str, float]) -> None:
        step = self.trainer.step
        if self.every > 0 and step % self.every == 0 and step < self.trainer.max_steps:
            self.run()

    def after_train(self) -> None:
        if not self.history or self.history[-1][0] != self.trainer.step:
            self.run()

    def run(self) -> dict[str, float] | None:
        values = self.trainer.validate()
        if values is None:
            return None
        self.history.append((self.trainer.step, values))
        primary = self.trainer.task.primary_metric
        self.best = max(self.best, values[primary])
        if self.log is not None:
            self.log.log_values(values)
        if self.trainer.ctx.is_main:
            logger.info(
                "step %d: held-out %s",
                self.trainer.step,
                ", ".join(f"{k} {v:.3f}" for k, v in values.items()),
            )
        return values

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "history": [[s, v] for s, v in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state.get("best", -1.0))
        self.history = [(int(s), dict(v)) for s, v in state.get("history", [])]


class CheckpointHook(HookBase):
    """Saves ``step_<N>.pth`` and ``last.pth`` every ``every`` steps, and ``last.pth`` plus
    ``model.pth`` (weights and recipe only) at the end. Files are this project's own
    format (loadable with ``matcher.load``) with the training state added.

    Args:
        every: steps between checkpoints (0: only at the end).
        keep: numbered checkpoints kept (older ones are deleted).
    """

    def __init__(self, *, every: int, keep: int = 3) -> None:
        self.every = every
        self.keep = keep

    def after_step(self, metrics: dict[str, float]) -> None:
        step = self.trainer.step
        if self.every > 0 and step % self.every == 0 and step < self.trainer.max_steps:
            self.save(numbered=True)

    def after_train(self) -> None:
        self.save(numbered=False)
        if self.trainer.ctx.is_main:
            self.trainer.save_model(self.trainer.out_dir / "model.pth")

    def save(self, *, numbered: bool) -> None:
        t = self.trainer
        if not t.ctx.is_main:
            return
        path = t.out_dir / "last.pth"
        t.save_checkpoint(path)
        if numbered:
            t.save_checkpoint(t.out_dir / f"step_{t.step:07d}.pth")
            old = sorted(Path(t.out_dir).glob("step_*.pth"))[: -self.keep]
            for stale in old:
                stale.unlink(missing_ok=True)


class ReplicaCheckHook(HookBase):
    """Under DDP, checks every ``every`` steps and at the end that all processes hold the
    same weights: each sums its parameters in float64, the sums are gathered, and their
    spread (max - min) is logged as ``replica_spread`` with ``world_size`` — 0 when the
    replicas agree; a warning otherwise.

    Args:
        every: steps between checks (0: only at the end).
        log: where to write the values.
    """

    def __init__(self, *, every: int, log: MetricsLogHook | None) -> None:
        self.every = every
        self.log = log

    def after_step(self, metrics: dict[str, float]) -> None:
        step = self.trainer.step
        if self.every > 0 and step % self.every == 0 and step < self.trainer.max_steps:
            self.check()

    def after_train(self) -> None:
        self.check()

    def check(self) -> float | None:
        t = self.trainer
        if not t.ctx.distributed:
            return None
        import torch
        import torch.distributed as dist

        total = sum(p.detach().double().sum() for p in t.module.parameters())
        local = torch.stack([total.to(t.ctx.device)])
        gathered = [torch.zeros_like(local) for _ in range(t.ctx.world_size)]
        dist.all_gather(gathered, local)
        values = torch.cat(gathered)
        spread = float(values.max() - values.min())
        if spread != 0.0 and t.ctx.is_main:
            logger.warning("replicas disagree at step %d (checksum spread %g)", t.step, spread)
        if self.log is not None:
            self.log.log_values({"replica_spread": spread, "world_size": float(t.ctx.world_size)})
        return spread
