"""Qualitative analysis of a trained run (``semid analyze``): case studies of sampled users,
where two models fail (hit/miss outcomes, how close a miss's top-1 is to the target in
Semantic-ID space, metrics by target popularity, history length and cold/warm target), and what
the codes mean. ``stage`` runs it; ``failures`` holds the pure counting and bucketing."""
