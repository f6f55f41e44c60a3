"""Models that decode Semantic IDs: tokenizer, trie, batched beam search, SID model folders."""
