"""TIGER generative retrieval: model, data, training, trie-constrained beam search."""
