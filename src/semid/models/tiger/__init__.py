"""TIGER generative retrieval (Rajput et al., 2023): model, batches, training, ranker (docs/tiger.md)."""
