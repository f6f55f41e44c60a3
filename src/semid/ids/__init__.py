"""Semantic IDs: RQ-VAE, RQ-KMeans and random codes over item embeddings, and their analysis."""
