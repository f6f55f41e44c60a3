"""Semantic IDs inside a ranking model (Singh et al., RecSys 2024): item representations
(``represent``, ``spm``), a DIN-style ranker (``model``), its data, loop and metrics, the study
grid (``study``, ``report``, ``plots``) and TIGER re-ranking (``rerank``). See docs/ranking.md."""
