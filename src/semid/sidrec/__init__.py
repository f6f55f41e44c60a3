"""Semantic-ID-native baselines: SID-GRU and SID-BERT4Rec with per-level heads and trie beam search."""
