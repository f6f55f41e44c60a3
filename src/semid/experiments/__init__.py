"""Experiments that span several stages: the model comparison (``semid compare``)."""
