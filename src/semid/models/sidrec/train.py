"""Training SID-GRU / SID-BERT4Rec on :class:`semid.generative.module.SIDModule`: per-level
cross-entropy with teacher forcing, validation Recall@10 by trie-constrained beam search.

An ensemble (``members > 1``) trains its members one after another into ``OUT/member<m>/`` (each a
whole training run: checkpoints, logs, early stopping on its own validation Recall@10), then
scores the ensemble on the same validation users and writes the members' weights as one model.
A killed ensemble continues with ``--resume``: finished members are kept, the current one resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from semid import checkpoints, training
from semid.core import artifacts, trainlog
from semid.core.log import log
from semid.core.run import WEIGHTS, RunFolder
from semid.evaluate import metrics as M
from semid.generative.folder import SIDData, resolve_ids, sid_data, write_folder
from semid.generative.module import SIDModule
from semid.generative.tokens import SIDTokenizer, history_tokens
from semid.models.sidrec.config import SIDBert4RecConfig, SIDRecConfig
from semid.models.sidrec.data import SeqBatch, train_rows
from semid.models.sidrec.model import SIDArgs, build
from semid.sequences import EvalBatches


def model_args(cfg: SIDRecConfig, tok: SIDTokenizer) -> SIDArgs:
    extra = ({"layers": cfg.layers, "n_heads": cfg.n_heads} if isinstance(cfg, SIDBert4RecConfig)
             else {"gru_layers": cfg.gru_layers})
    return SIDArgs(vocab_size=tok.vocab_size, level_ranges=[tok.level_range(lvl) for lvl in range(tok.id_length)],
                   d_model=cfg.d_model, d_ff=cfg.d_ff, dropout=cfg.dropout, tied=cfg.tied, max_items=cfg.max_items,
                   members=cfg.members, **extra)


class SIDRecModule(SIDModule):
    def __init__(self, cfg: SIDRecConfig, args: SIDArgs, tokenizer: SIDTokenizer | None, total_steps: int = 1):
        super().__init__(cfg, {"args": args.to_dict()}, tokenizer, total_steps)
        self.model = build(cfg.network, args)

    def decays(self, name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim >= 2 and "codes" not in name and "prefix" not in name and "pos" not in name

    def step_loss(self, batch: SeqBatch):
        h, target = self.model(batch.tokens, batch.masked)
        loss, per_level = self.model.heads.nll(h, target, self.cfg.label_smoothing)
        return loss, len(target), {f"ce_level{lvl}": ce for lvl, ce in enumerate(per_level)}

    def start(self, hist: torch.Tensor, users: torch.Tensor):
        return self.model.start(hist.view(len(hist), -1, self.tokenizer.id_length))


def train(cfg: SIDRecConfig, run: RunFolder, out: Path, *, resume: bool = False, ids: Path | None = None,
          **_: Any) -> dict[str, Any]:
    """Train into ``out``; returns what goes into config.json (weights and ID table written)."""
    if cfg.members > 1:
        return train_ensemble(cfg, run, out, resume=resume, ids=ids)
    ids_folder = resolve_ids(run, cfg.ids, ids)
    d = sid_data(run, ids_folder, cfg.max_items)
    tok = d.tokenizer
    log.info("%s: %s IDs (%d levels × %d + dedup %d), %d items", cfg.name, ids_folder.name, tok.num_levels,
             tok.codebook_size, tok.dedup_size, tok.num_items)
    training.setup(cfg)
    item_tokens = tok.item_tokens.numpy()
    train_data = train_rows(d.sequences, item_tokens, max_items=cfg.max_items, batch_size=cfg.batch_size, seed=cfg.seed,
                            mask_prob=getattr(cfg, "mask_prob", None))
    total = cfg.max_steps if cfg.max_steps > 0 else len(train_data) * cfg.max_epochs
    log.info("%s: %d training sequences (%d next-item targets) in %d batches per epoch; %d steps planned",
             cfg.name, len(train_data.rows), train_data.num_targets, len(train_data), total)
    val, pick = val_batches(d, cfg.val_users)
    args = model_args(cfg, tok)
    module = SIDRecModule(cfg, args, tok, total_steps=total)
    summary = training.fit(module, train_data, val, cfg, out, resume=resume, name=cfg.name)
    _, state = checkpoints.checkpoint_state(Path(summary["best_checkpoint"]))
    log.info("%s: best validation Recall@10 %.4f (on %d users) after %d epochs in %.0f s", cfg.name,
             summary["best_val_recall@10"] or 0.0, len(pick), summary["epochs"], summary["train_wall_s"])
    meta = {"args": args.to_dict(), "tokenizer": tok.spec(), "ids": str(ids_folder),
            "training": summary | {"val_users": len(pick), "train_sequences": len(train_data.rows),
                                   "train_targets_per_epoch": train_data.num_targets}}
    return write_folder(out, meta, state, d.codes)


MEMBER_DONE = "member.json"  # a finished member's config.json part (its training summary)


def train_ensemble(cfg: SIDRecConfig, run: RunFolder, out: Path, *, resume: bool = False,
                   ids: Path | None = None) -> dict[str, Any]:
    """``cfg.members`` networks, member ``m`` with seed ``cfg.seed * members + m``; the folder's
    training summary adds up their steps, epochs and seconds, and its validation Recall@10 is the
    ensemble's, on the members' validation users."""
    n = cfg.members
    ids_folder = resolve_ids(run, cfg.ids, ids)
    metas, states = [], {}
    for m in range(n):
        sub = out / f"member{m}"
        sub.mkdir(parents=True, exist_ok=True)
        done = sub / MEMBER_DONE
        if resume and done.is_file():
            log.info("%s: member %d/%d finished before (kept)", cfg.name, m + 1, n)
            meta = artifacts.read_json(done)
        else:
            done.unlink(missing_ok=True)
            seed = cfg.seed * n + m
            log.info("%s: training member %d/%d (seed %d)", cfg.name, m + 1, n, seed)
            one = cfg.model_copy(update={"members": 1, "seed": seed, "name": f"{cfg.name}.member{m}"})
            meta = train(one, run, sub, resume=resume and (sub / "checkpoints" / "last.ckpt").is_file(), ids=ids_folder)
            artifacts.write_json(done, meta)
        metas.append(meta)
        states |= {f"members.{m}.{k}": v for k, v in load_file(str(sub / WEIGHTS)).items()}
    d = sid_data(run, ids_folder, cfg.max_items)
    args = model_args(cfg, d.tokenizer)
    module = SIDRecModule(cfg, args, d.tokenizer)
    module.model.load_state_dict(states)
    module.eval()
    recall = _val_recall(module, d, cfg.val_users)
    trainings = [meta["training"] for meta in metas]
    seconds = sum(trainlog.train_seconds(out / f"member{m}", t)[0] or 0.0 for m, t in enumerate(trainings))
    summary = {"members": trainings, "best_val_recall@10": recall, "train_wall_s": round(seconds, 1),
               "epochs": sum(t["epochs"] for t in trainings), "steps": sum(t["steps"] for t in trainings),
               "stopped_by": "members", "val_users": trainings[0]["val_users"],
               "train_sequences": trainings[0]["train_sequences"],
               "train_targets_per_epoch": trainings[0]["train_targets_per_epoch"],
               **{k: trainings[-1][k] for k in ("precision", "device", "processes", "threads") if k in trainings[-1]}}
    log.info("%s: ensemble of %d, validation Recall@10 %.4f (members %s), %.0f s of training", cfg.name, n, recall,
             ", ".join(f"{t['best_val_recall@10'] or 0:.4f}" for t in trainings), seconds)
    meta = {"args": args.to_dict(), "tokenizer": d.tokenizer.spec(), "ids": str(ids_folder), "training": summary}
    return write_folder(out, meta, states, d.codes)


def val_batches(d: SIDData, val_users: int | None) -> tuple[EvalBatches, np.ndarray]:
    """(the validation users every SID-GRU / SID-BERT4Rec is scored on during training, their indices)."""
    hist, targets, users = d.val
    pick = training.val_sample(len(hist), val_users)
    item_tokens = d.tokenizer.item_tokens.numpy()
    return EvalBatches([hist[i] for i in pick], targets[pick], users[pick], lambda h: history_tokens(h, item_tokens)), pick


@torch.no_grad()
def _val_recall(module: SIDRecModule, d: SIDData, val_users: int | None) -> float:
    """Recall@10 of ``module`` on the validation users its members were scored on."""
    ranks = [M.ranks(module.top10(h, u).cpu().numpy(), t.cpu().numpy()) for h, t, u in val_batches(d, val_users)[0]]
    return float(M.recall_at(np.concatenate(ranks), 10))
