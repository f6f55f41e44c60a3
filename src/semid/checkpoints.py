"""What a training checkpoint holds and how a run resumes from it, exactly where it stopped.

- :func:`readable_checkpoint`, :func:`checkpoint_state`: a Lightning checkpoint read without
  pickles (a damaged one is a clear error); :func:`save_weights`: the ``safetensors`` weights file
  of every model folder.
- :func:`restore_rng`: the random states a checkpoint saved (``semid.training.SemidModule.on_save_checkpoint``).
- :func:`finish_epoch`, :func:`reopen_epoch`: mend Lightning's (2.6) loop counters of a checkpoint
  written at an epoch's end, or by a budget's stop inside one, before Lightning reads them.
- :class:`TrainLoader`: the training loader, whose saved state is the epoch's batching, so that a
  run resumed inside an epoch with other batches is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from semid.core.errors import ConfigError, DataError
from semid.core.run import WEIGHTS


def readable_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint, loaded on CPU without pickles; a corrupt one is a DataError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise DataError(f"{path} is unreadable ({type(exc).__name__}): it was cut short or damaged; delete it and "
                        "train without --resume (or with --force)") from None


def checkpoint_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(hyper-parameters, the ``model.`` sub-module's state dict) of a Lightning checkpoint."""
    ckpt = readable_checkpoint(path)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    return ckpt["hyper_parameters"], state


def save_weights(state: dict[str, torch.Tensor], out: Path, name: str = WEIGHTS) -> None:
    """A state dict as ``safetensors`` (no pickles), the weights file of every model folder."""
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / name))


def restore_rng(rng: dict[str, Any]) -> None:
    """Set torch's random states to those a checkpoint saved (:meth:`semid.training.SemidModule.on_save_checkpoint`)."""
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def finish_epoch(checkpoint: dict[str, Any], max_steps: int) -> bool:
    """Mark a checkpoint written at an epoch's end (after its last batch and its validation) as a
    finished epoch, so that a resumed run starts the next epoch at its first batch.

    Lightning (2.6, its issue 19617's family) restores such a checkpoint of a run with a step
    budget (``max_steps`` set, as the ``paper`` preset's) as a restart inside the epoch whose
    batches are all done: the next epoch then counts as trained with no step in it, so every
    resume silently lost one epoch. An epoch-budget run (``max_steps`` of the resumed run ≤ 0)
    restores it correctly and is left as it is. Returns whether the checkpoint was changed (in
    place, before Lightning reads its loops).
    """
    epochs, batches = _progress(checkpoint)
    if not epochs or not batches or max_steps <= 0 or not batches.get("is_last_batch") or not _counted_open(epochs):
        return False
    for part in ("total", "current"):
        epochs[part]["completed"] = epochs[part]["processed"]
    batches["current"] = {key: 0 for key in batches["current"]}
    batches["is_last_batch"] = False
    return True


def reopen_epoch(checkpoint: dict[str, Any]) -> bool:
    """Mark a checkpoint written when a budget (``max_steps``, ``max_time_min``) stopped training
    inside an epoch as a restart inside that epoch, so that a resumed run trains its other batches.

    Lightning (2.6) counts the stopped epoch as processed before the checkpoint is written, so it
    restored the checkpoint as an epoch's end: an epoch-budget run went on with the next epoch (the
    stopped one's other batches never trained), and a step-budget run, restarted inside the epoch,
    counted it twice (``max_epochs`` then ended training one epoch early, and the next end-of-epoch
    checkpoint no longer looked like one to :func:`finish_epoch`). Returns whether the checkpoint
    was changed (in place, before Lightning reads its loops).
    """
    epochs, batches = _progress(checkpoint)
    if not epochs or not batches or batches.get("is_last_batch") or not batches["current"].get("completed") \
            or not _counted_open(epochs):
        return False
    for part in ("total", "current"):
        epochs[part]["processed"] -= 1
    return True


def _progress(checkpoint: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the fit loop's epoch progress, its batch progress) as the checkpoint saved them."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {})
    return loop.get("epoch_progress"), loop.get("epoch_loop.batch_progress")


def _counted_open(epochs: dict[str, Any]) -> bool:
    """Lightning counted the last epoch as started and processed but not completed."""
    total = epochs["total"]
    return total["processed"] == total["started"] == total["completed"] + 1


class TrainLoader(torch.utils.data.DataLoader):
    """The loader of a :class:`~semid.sequences.Batches`, resumable inside an epoch.

    Where it stands is the trainer's to know (the loop's count of batches done);
    :meth:`semid.training.SemidModule.on_train_start` skips those. The state Lightning saves here
    is the epoch's batching, so that a run resumed inside an epoch with other batches (another
    ``batch_size``, seed or process count) is refused instead of skipping the wrong ones.
    """

    saved: dict[str, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"batches_per_epoch": len(self.dataset), "budget": int(self.dataset.budget), "seed": int(self.dataset.seed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.saved = dict(state)

    def check_resumable(self, name: str) -> None:
        now = self.state_dict()
        if self.saved is not None and self.saved != {key: now.get(key) for key in self.saved}:
            was, now = (f"{s.get('batches_per_epoch')} training batches an epoch of {s.get('budget', '?')} targets "
                        f"(seed {s.get('seed')})" for s in (self.saved, now))
            raise ConfigError(f"{name}: the checkpoint stopped inside an epoch of {was}, and this run makes {now}: "
                              "resume with the settings the run started with (batch_size, seed, devices), or start "
                              "again without --resume")
