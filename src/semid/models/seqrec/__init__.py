"""Item-ID sequential models: SASRec (CE or BCE), GRU4Rec, BERT4Rec (docs/baselines.md)."""
