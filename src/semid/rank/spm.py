"""SentencePiece over Semantic IDs (SPM-SID, Singh et al. 2024).

Each (level, code) pair is one symbol, a private-use unicode character ``U+E000 + level·K +
code``, so an item's ID ``(c1, …, cL)`` is an ``L``-character string. The vocabulary is learned
with SentencePiece's BPE model (its unigram model kept no multi-symbol pieces over private-use
characters in our tests) on one sentence per *training event* (the SID of the item
observed, so items count by their training frequency) plus each symbol once (every code has a
piece). One sentence per item and no whitespace: pieces never cross item boundaries, and a piece
spans consecutive levels of one item. Frequent code combinations become single pieces; rare
ones fall back to shorter pieces down to single symbols.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import sentencepiece as spm

from semid.core.errors import ConfigError, DataError

BASE = 0xE000  # start of the Basic Multilingual Plane's private-use area (6400 characters)
PRIVATE_USE = 6400


def symbol(level: int, code: int, size: int) -> str:
    return chr(BASE + level * size + code)


def sid_string(codes: np.ndarray, size: int) -> str:
    """The L-character string of one item's codes."""
    return "".join(symbol(level, int(c), size) for level, c in enumerate(codes))


def decode_symbols(text: str, size: int) -> list[tuple[int, int]]:
    """(level, code) of each character of an SID string."""
    return [divmod(ord(ch) - BASE, size) for ch in text]


class SidPieces:
    """A trained SentencePiece model over SID strings: ``encode(codes) -> piece ids``."""

    def __init__(self, proto: bytes, levels: int, size: int):
        self.levels, self.size, self.proto = levels, size, proto
        self.sp = spm.SentencePieceProcessor(model_proto=proto)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def pieces(self, codes: np.ndarray) -> list[str]:
        return self.sp.encode(sid_string(codes, self.size), out_type=str)

    def encode(self, codes: np.ndarray) -> list[int]:
        ids = self.sp.encode(sid_string(codes, self.size), out_type=int)
        if self.sp.unk_id() in ids:
            raise DataError(f"SID {list(map(int, codes))} holds a code outside the SPM vocabulary")
        return ids

    def decode(self, ids: list[int]) -> np.ndarray:
        """Inverse of :meth:`encode`: the item's codes."""
        text = "".join(self.sp.id_to_piece(i) for i in ids)
        return np.array([code for _, code in decode_symbols(text, self.size)], dtype=np.int64)

    def item_pieces(self, codes: np.ndarray) -> list[list[int]]:
        """Piece ids of every item (rows of ``codes`` [N, L])."""
        return [self.encode(row) for row in codes]

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.proto)


def train(codes: np.ndarray, counts: np.ndarray, size: int, vocab_size: int, *, seed: int = 0) -> SidPieces:
    """Learn a vocabulary of at most ``vocab_size`` pieces over the SIDs ``codes`` [N, L] of the
    catalogue, each item weighted by its training count ``counts`` [N] (0: unseen, not used)."""
    codes = np.asarray(codes, dtype=np.int64)
    levels = codes.shape[1]
    if levels * size > PRIVATE_USE:
        raise ConfigError(f"SPM-SID needs L·K <= {PRIVATE_USE} symbols, got {levels}·{size}")
    symbols = [symbol(level, c, size) for level in range(levels) for c in range(size)]
    if vocab_size < len(symbols) + 1:
        raise ConfigError(f"SPM vocabulary size {vocab_size} is below the {len(symbols)} single-code pieces "
                          f"(+1 unknown): raise table_size to at least {len(symbols) + 1}")
    seen = np.flatnonzero(np.asarray(counts) > 0)
    if len(seen) == 0:
        raise DataError("no training events to learn the SPM vocabulary from")
    strings = [sid_string(codes[i], size) for i in seen]
    weights = np.asarray(counts)[seen].astype(np.int64)

    def sentences():
        yield from symbols
        for text, n in zip(strings, weights, strict=True):
            for _ in range(int(n)):
                yield text

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences(), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        hard_vocab_limit=False, character_coverage=1.0, max_sentencepiece_length=levels,
        add_dummy_prefix=False, remove_extra_whitespaces=False, split_by_whitespace=False,
        normalization_rule_name="identity", byte_fallback=False, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
        input_sentence_size=0, shuffle_input_sentence=False,
        num_threads=1, minloglevel=2, train_extremely_large_corpus=False)
    return SidPieces(model.getvalue(), levels, size)


def load(path: Path, levels: int, size: int) -> SidPieces:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found: the SPM vocabulary of this ranker is missing")
    return SidPieces(path.read_bytes(), levels, size)
