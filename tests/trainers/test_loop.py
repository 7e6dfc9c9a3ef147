"""The training loop: schedule, freezing, checkpoints that load with matcher.load, logs,
exact resume, and the command line."""

from __future__ import annotations

import csv
import math
import socket

import pytest
import torch

import matcher
from matcher.checkpoints.io import read_checkpoint
from tests.trainers.conftest import data_overrides
from trainers.schedule import LRSchedule
from trainers.train import main as train_main

FAST = [
    "train.batch_size=4",
    "train.steps_per_epoch=4",
    "train.epochs=3",
    "train.val_pairs=8",
    "train.log_every=2",
    "train.val_every=4",
    "train.checkpoint_every=4",
]


def test_schedule_warmup_then_decay():
    log = LRSchedule(base_lr=0.01, end_lr=0.001, epochs=10, warmup_epochs=2,
                     warmup_start_lr=0.001, kind="log")  # fmt: skip
    assert log(0.0) == pytest.approx(0.001)
    assert log(1.0) == pytest.approx(math.sqrt(0.001 * 0.01))  # geometric warm-up
    assert log(2.0) == pytest.approx(0.01)
    assert log(6.0) == pytest.approx(0.01 * 0.1**0.5)
    assert log(10.0) == pytest.approx(0.001)
    cos = LRSchedule(base_lr=0.08, end_lr=1e-6, epochs=20, warmup_epochs=1,
                     warmup_start_lr=1e-6, kind="cosine")  # fmt: skip
    assert cos(1.0) == pytest.approx(0.08)
    assert cos(10.5) == pytest.approx((0.08 + 1e-6) / 2)
    assert cos(20.0) == pytest.approx(1e-6)
    exp = LRSchedule(base_lr=0.01, end_lr=1e-5, epochs=50, kind="exp")
    assert exp(0.0) == exp(0.99) == pytest.approx(0.01)  # stepped per epoch
    assert exp(1.0) == pytest.approx(0.01 * (1e-3) ** (1 / 50))
    with pytest.raises(ValueError):
        LRSchedule(base_lr=0.01, end_lr=0.001, epochs=5, kind="step")


def _train(tmp_path, name, sets, *extra, recipe="tiny/siamrpn_alexnet"):
    out = tmp_path / name
    args = [recipe, "--out", str(out), "--workers", "0", "--no-tensorboard"]
    code = train_main([*args, *FAST, *data_overrides(sets), *extra])
    assert code == 0
    return out


def test_resume_is_exact(tmp_path, synth_sets):
    """N steps straight == N/2 steps, stop, resume, N/2 steps (same weights, bit for bit)."""
    straight = _train(tmp_path, "straight", synth_sets, "--max-steps", "10")
    half = _train(tmp_path, "half", synth_sets, "--max-steps", "5")
    resumed_out = tmp_path / "half"
    code = train_main(
        ["tiny/siamrpn_alexnet", "--out", str(resumed_out), "--resume", "auto",
         "--max-steps", "10", "--workers", "0", "--no-tensorboard"]
    )  # fmt: skip
    assert code == 0 and half == resumed_out
    a = read_checkpoint(straight / "model.pth").state_dict
    b = read_checkpoint(resumed_out / "model.pth").state_dict
    assert a.keys() == b.keys()
    changed = 0
    for key in a:
        assert torch.equal(a[key], b[key]), key
        changed += 0 if key.endswith("num_batches_tracked") else 1
    first = read_checkpoint(straight / "step_0000004.pth").state_dict
    assert any(not torch.equal(first[k], a[k]) for k in a)  # training did change weights
    assert changed > 0


def test_outputs_load_and_log(tmp_path, synth_sets):
    out = _train(tmp_path, "run", synth_sets, "--max-steps", "8")
    m = matcher.load(None, out / "model.pth")  # the recipe travels with the weights
    assert m.name == "tiny/siamrpn_alexnet"
    assert (out / "recipe.yaml").is_file() and (out / "last.pth").is_file()
    training = read_checkpoint(out / "last.pth").extra["training"]
    assert training["step"] == 8 and "optimizer" in training
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    keys = {r["key"] for r in rows}
    assert {"total", "cls", "loc", "lr", "pairs_per_s", "val_mean_iou", "val_success_auc"} <= keys
    steps = sorted({int(r["step"]) for r in rows if r["key"] == "total"})
    assert steps == [2, 4, 6, 8]


def test_backbone_frozen_until_its_epoch(tmp_path, synth_sets):
    out = _train(tmp_path, "frozen", synth_sets, "--max-steps", "4", "train.unfreeze_epoch=2")
    torch.manual_seed(0)  # the trainer seeds with train.seed (0) before building
    start = matcher.build("tiny/siamrpn_alexnet").net.state_dict()
    trained = read_checkpoint(out / "model.pth").state_dict
    backbone = [k for k in trained if k.startswith("backbone.")]
    assert backbone and all(torch.equal(trained[k], start[k]) for k in backbone)
    assert not torch.equal(trained["head.cls.head.3.weight"], start["head.cls.head.3.weight"])


def test_user_mistakes_exit_2(tmp_path, capsys):
    assert train_main(["tiny/nope"]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert train_main(["tiny/siamfc_alexnet", "train.bogus=1"]) == 2
    assert "train.bogus" in capsys.readouterr().err
    assert train_main(["tiny/siamfc_alexnet", "--resume", str(tmp_path / "x.pth")]) == 2


def _free_port() -> int:
    """A loopback TCP port nobody listens on now (another test run may use any fixed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_cpu_processes_keep_identical_replicas(tmp_path, synth_sets):
    """torchrun, 2 processes, gloo: both replicas hold the same weights after training."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun), "--nproc_per_node", "2", "--master_port", str(_free_port()),
        "-m", "trainers.train", "tiny/siamrpn_alexnet", "--out", str(out), "--device", "cpu",
        "--max-steps", "6", "--workers", "0", "--no-tensorboard",
        *FAST, *data_overrides(synth_sets),
    ]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    world = [float(r["value"]) for r in rows if r["key"] == "world_size"]
    spread = [float(r["value"]) for r in rows if r["key"] == "replica_spread"]
    assert world and all(w == 2.0 for w in world)
    assert spread and all(s == 0.0 for s in spread)
    assert matcher.load(None, out / "model.pth").name == "tiny/siamrpn_alexnet"
