"""Training on several processes (Lightning's DDP, chosen by config; docs/scaling.md).

The end-to-end test trains SASRec (dropout off, so nothing is random) on the toy data twice: one
process with batch 64, and two CPU processes (gloo) with batch 32 each, launched as
docs/scaling.md tells users to: ``torchrun --standalone --nproc_per_node 2 --no-python semid train
sasrec ... devices=2 strategy=ddp accelerator=cpu``. The runs differ only in arithmetic: DDP
averages the two processes' mean losses where one process takes the mean over all the global
batch's targets (the halves of a length-bucketed batch hold almost as many targets), and sums run
in another order.

Measured per-epoch mean training loss, one process → two: 6.13899 → 6.14004, 5.86986 → 5.87075,
5.71345 → 5.71437, 5.57859 → 5.57958: at most 1.8e-4 relative (1.05e-3 absolute), the same steps,
validation Recall@10 equal but for one user of 200 in the last epoch. The test allows 1e-3
relative (an epoch improves the loss by 0.13 to 0.27). It fails when the sharding breaks: global
batches built to 32 rows and then split (twice the steps, losses 3e-2 apart), every process
training on the whole global batch (rank 0's own step losses equal one process's instead of
differing by up to 2e-2), validation ranks not gathered (100 users scored instead of 200).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch

from semid import ddp, training
from semid.core import config as cfgmod
from semid.core.errors import ConfigError
from semid.data import prepare
from semid.data.config import PrepareConfig
from semid.models import registry
from semid.models import stage as model_stage
from semid.models.seqrec.config import SASRecConfig
from semid.sequences import Batches, EvalBatches

BIN = Path(sys.executable).parent
KEYS = ["max_items=8", "d_model=16", "layers=1", "dropout=0", "max_epochs=4", "patience=4", "val_users=200",
        "threads=1", "accelerator=cpu"]
REL_TOL = 1e-3


def _gloo() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_gloo_available()


def _curve(folder: Path) -> pl.DataFrame:
    """Per epoch: the mean training loss (every process), rank 0's last logged step loss, Recall@10."""
    d = pl.read_csv(folder / "logs" / "metrics.csv")
    return d.group_by("epoch", maintain_order=True).agg(
        pl.col("step").max(), pl.col("train/loss_epoch").drop_nulls().first(),
        pl.col("train/loss").drop_nulls().last(), pl.col("val/recall@10").drop_nulls().first(),
        pl.col("val/users").drop_nulls().first())


@pytest.mark.slow
@pytest.mark.skipif(not _gloo(), reason="torch.distributed has no gloo backend on this machine")
def test_two_processes_follow_one_process_with_the_same_global_batch(tmp_path):
    if not (BIN / "torchrun").is_file() or not (BIN / "semid").is_file():
        pytest.skip(f"torchrun or the semid entry point is not installed in {BIN}")
    out = tmp_path / "toy"
    prepare.run(PrepareConfig(dataset="toy"), out)
    one = model_stage.train("sasrec", cfgmod.load(SASRecConfig, None, [*KEYS, "batch_size=64", "name=one"]), out)
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "--no-python", str(BIN / "semid"),
           "train", "sasrec", "--out", str(out), *KEYS, "batch_size=32", "name=two", "devices=2", "strategy=ddp"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    two = out / "models" / "two"
    a, b = _curve(one), _curve(two)
    print("one process, batch 64:", a.to_dicts(), "\ntwo processes, batch 32 each:", b.to_dicts())
    assert a["step"].to_list() == b["step"].to_list() and len(a) == 4  # the same steps: global batch 2 × 32 = 64
    rel = ((a["train/loss_epoch"] - b["train/loss_epoch"]).abs() / a["train/loss_epoch"]).max()
    assert rel < REL_TOL, f"epoch losses differ by {rel:.2e} relative"
    # validation gathered every process's users: one Recall@10 (a user may flip) and one stopping decision
    assert b["val/users"].to_list() == [200.0] * 4
    assert (a["val/recall@10"] - b["val/recall@10"]).abs().max() <= 1 / 200 + 1e-6
    # ... but not the same rows: rank 0's own step loss (half the batch) is not the whole batch's
    assert (a["train/loss"] - b["train/loss"]).abs().max() > 1e-3
    # rank 0 alone wrote a complete folder; the one-process keys stay out of a folder's identity
    meta = json.loads((two / "config.json").read_text())
    assert meta["training"]["processes"] == 2 and meta["config"]["devices"] == 2
    assert json.loads((two / "manifest.json").read_text())["status"] == "complete"
    assert not (two / model_stage.PENDING).exists() and (two / "model.safetensors").is_file()
    assert "devices" not in json.loads((one / "config.json").read_text())["config"]


def _fake(rank: int, world: int) -> SimpleNamespace:
    return SimpleNamespace(global_rank=rank, world_size=world)


def test_each_global_batch_is_dealt_out_across_processes():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, 101)
    one = Batches(lengths, np.ones(101, dtype=np.int64), 12, 3, lambda idx, *_: np.sort(idx))
    shares = [ddp.RankBatches(Batches(lengths, np.ones(101, dtype=np.int64), 4, 3, lambda idx, *_: idx),
                              _fake(rank, 3)) for rank in range(3)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(one)  # one step per global batch of 3 × 4
    for _epoch in range(2):  # reshuffled alike in every process
        for whole, *parts in zip(one, *shares):
            if len(whole) >= 3:
                assert np.array_equal(np.sort(np.concatenate(parts)), whole)
            else:  # a tail of fewer rows than processes is repeated so that no process is idle
                assert all(len(p) == 1 for p in parts) and set(np.concatenate(parts)) == set(whole)


def test_validation_users_are_shared_out_batch_by_batch():
    hist = [np.arange(i % 5 + 1) for i in range(10)]
    ev = EvalBatches(hist, np.arange(10), np.arange(10), lambda h: len(h), batch_users=4)  # batches of 4, 4, 2
    shares = [ddp.RankShare(ev, _fake(r, 3)) for r in range(3)]
    assert [len(s) for s in shares] == [3, 3, 2]
    users = [[u for _, _, batch in s for u in batch.tolist()] for s in shares]
    assert sorted(sum(users, [])) == list(range(10)) and len(set(sum(users, []))) == 10
    with pytest.raises(ConfigError, match="cannot be shared out to 12 processes"):
        ddp.shard(Batches(np.ones(3), np.ones(3), 1, 0, lambda *a: a), ev, _fake(0, 12))


def test_bad_scaling_keys_are_clear_errors(tmp_path, monkeypatch):
    for bad, says in [("strategy=ddp_spawn", "bad value for 'strategy'"), ("devices=0", "bad value for 'devices'"),
                      ("devices=many", "number of processes"), ("num_nodes=0", "bad value for 'num_nodes'")]:
        with pytest.raises(ConfigError, match=says):
            cfgmod.load(SASRecConfig, None, [bad])
    assert cfgmod.load(SASRecConfig, None, ["devices=auto"]).devices == "auto"
    cfg = registry.get("gru4rec").config(accelerator="gpu", devices=64)
    with pytest.raises(ConfigError, match="do not fit this machine"):
        training.fit(None, None, None, cfg, tmp_path)
    monkeypatch.setenv("LOCAL_RANK", "1")  # as in the second process of `torchrun --nproc_per_node 2 ... devices=1`
    assert not cfgmod.lead_process()
    with pytest.raises(ConfigError, match="one of several"):
        training.fit(None, None, None, registry.get("gru4rec").config(accelerator="cpu"), tmp_path)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert cfgmod.lead_process()
