"""Training SID-GRU / SID-BERT4Rec on :class:`semid.generative.module.SIDModule`: per-level
cross-entropy with teacher forcing, validation Recall@10 by trie-constrained beam search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semid import training
from semid.core.log import log
from semid.core.run import RunFolder
from semid.generative.folder import resolve_ids, sid_data, write_folder
from semid.generative.module import SIDModule
from semid.generative.tokens import SIDTokenizer, history_tokens
from semid.models.sidrec.config import SIDBert4RecConfig, SIDRecConfig
from semid.models.sidrec.data import SeqBatch, train_rows
from semid.models.sidrec.model import SIDArgs
from semid.sequences import EvalBatches


def model_args(cfg: SIDRecConfig, tok: SIDTokenizer) -> SIDArgs:
    extra = ({"layers": cfg.layers, "n_heads": cfg.n_heads} if isinstance(cfg, SIDBert4RecConfig)
             else {"gru_layers": cfg.gru_layers})
    return SIDArgs(vocab_size=tok.vocab_size, level_ranges=[tok.level_range(lvl) for lvl in range(tok.id_length)],
                   d_model=cfg.d_model, d_ff=cfg.d_ff, dropout=cfg.dropout, tied=cfg.tied, max_items=cfg.max_items,
                   **extra)


class SIDRecModule(SIDModule):
    def __init__(self, cfg: SIDRecConfig, args: SIDArgs, tokenizer: SIDTokenizer | None, total_steps: int = 1):
        super().__init__(cfg, {"args": args.to_dict()}, tokenizer, total_steps)
        self.model = cfg.network(args)

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
    hist, targets, users = d.val
    pick = training.val_sample(len(hist), cfg.val_users)
    val = EvalBatches([hist[i] for i in pick], targets[pick], users[pick], lambda h: history_tokens(h, item_tokens))
    args = model_args(cfg, tok)
    module = SIDRecModule(cfg, args, tok, total_steps=total)
    summary = training.fit(module, train_data, val, cfg, out, resume=resume, name=cfg.name)
    _, state = training.checkpoint_state(Path(summary["best_checkpoint"]))
    log.info("%s: best validation Recall@10 %.4f (on %d users) after %d epochs in %.0f s", cfg.name,
             summary["best_val_recall@10"] or 0.0, len(pick), summary["epochs"], summary["train_wall_s"])
    meta = {"args": args.to_dict(), "tokenizer": tok.spec(), "ids": str(ids_folder),
            "training": summary | {"val_users": len(pick), "train_sequences": len(train_data.rows),
                                   "train_targets_per_epoch": train_data.num_targets}}
    return write_folder(out, meta, state, d.codes)
