"""Validation by trie-constrained beam search, for every model that decodes Semantic IDs (TIGER,
SID-GRU, SID-BERT4Rec); their shared config keys are :class:`semid.generative.config.SIDTrainerConfig`."""

from __future__ import annotations

from typing import Any

import torch

from semid.generative.beam import beam_search
from semid.generative.config import SIDTrainerConfig
from semid.generative.tokens import SIDTokenizer
from semid.generative.trie import PrefixTrie
from semid.training import SemidModule


class SIDModule(SemidModule):
    """Validation Recall@10 by constrained beam search; a subclass sets ``self.model`` and ``start``."""

    def __init__(self, cfg: SIDTrainerConfig, hparams: dict[str, Any], tokenizer: SIDTokenizer | None,
                 total_steps: int = 1):
        super().__init__(cfg, hparams, total_steps)
        self.tokenizer = tokenizer
        self.trie = PrefixTrie(tokenizer) if tokenizer is not None else None

    def start(self, hist: torch.Tensor, users: torch.Tensor):
        """The model's decoding state for history tokens ``[B, n * T]``."""
        raise NotImplementedError

    def top10(self, hist: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        self.trie.to(hist.device)
        res = beam_search(self.start(hist, users), len(hist), self.tokenizer, trie=self.trie,
                          beam_size=self.cfg.val_beam, top_k=10, device=hist.device)
        return res.items
