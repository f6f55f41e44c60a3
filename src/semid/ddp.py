"""Training on several processes (Lightning's DDP, docs/scaling.md): each process's share of the
batches and of the validation users, and how the processes other than rank 0 end."""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import numpy as np
import torch

from semid.core.errors import ConfigError
from semid.sequences import Batches, EvalBatches


class WorkerDone(SystemExit):
    """Ends a DDP process of rank > 0 once training is over (exit status 0): rank 0 alone writes
    the weights, ``config.json`` and the manifest."""


class RankBatches(Batches):
    """This process's share of the training batches under DDP: the rows of each global batch
    (grouped by length to ``batch_size × world size``) are dealt out in turn, so every process
    takes the same number of steps and one step sees what one process with the global batch would.

    A global batch of fewer rows than processes repeats some (Lightning's ``DistributedSampler``
    pads the same way). Ranks are read when batches are built, so forked processes get their own.
    """

    def __init__(self, data: Batches, trainer: L.Trainer):
        self.inner, self.trainer = data.collate, trainer
        super().__init__(data.lengths, data.weights, data.budget * trainer.world_size, data.seed, self._share)
        self.epoch = data.epoch

    def _share(self, idx: np.ndarray, rng: np.random.Generator, epoch: int, i: int) -> Any:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        rows = np.resize(idx, max(len(idx), world))[rank::world]
        # the order of batches comes from the epoch's generator; masks and negatives from one per process
        return self.inner(rows, np.random.default_rng([self.seed, epoch, i, rank]), epoch, i)


class RankShare(torch.utils.data.IterableDataset):
    """This process's share of the validation users under DDP: every world-size-th user of each
    batch, so every process scores as many batches; :meth:`semid.training.SemidModule.on_validation_epoch_end`
    gathers the ranks. Ranks are read when iterated, as for :class:`RankBatches`."""

    def __init__(self, data: EvalBatches, trainer: L.Trainer):
        self.data, self.trainer = data, trainer

    def _view(self) -> EvalBatches:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        view = copy.copy(self.data)
        view.parts = [part[rank::world] for part in self.data.parts if len(part) > rank]
        return view

    def __len__(self) -> int:
        return len(self._view())

    def __iter__(self):
        return iter(self._view())


def shard(train_data, val_data, trainer: L.Trainer) -> tuple[Any, Any]:
    """(train, val) as this process sees them: unchanged in one process, split under DDP."""
    world = trainer.world_size
    if world == 1:
        return train_data, val_data
    if not isinstance(train_data, Batches) or not isinstance(val_data, EvalBatches):
        raise ConfigError(f"training on {world} processes needs semid.sequences.Batches and EvalBatches, got "
                          f"{type(train_data).__name__} and {type(val_data).__name__}: train with devices=1 num_nodes=1")
    if val_data.parts and len(val_data.parts[0]) < world:
        raise ConfigError(f"{len(val_data.parts[0])} validation users cannot be shared out to {world} processes: "
                          "raise val_users or use fewer processes")
    return RankBatches(train_data, trainer), RankShare(val_data, trainer)
