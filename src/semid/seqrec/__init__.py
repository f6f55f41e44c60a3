"""Item-ID sequential baselines: SASRec (CE or BCE), GRU4Rec, BERT4Rec, popularity and semantic
KNN, each scoring the full catalogue (see docs/baselines.md)."""
