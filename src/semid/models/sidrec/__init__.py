"""Semantic-ID-native models: SID-GRU and SID-BERT4Rec, one head per ID level, trie beam search."""
