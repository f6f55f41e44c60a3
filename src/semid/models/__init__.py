"""Models: one package per family and :mod:`semid.models.registry`, the one table of model kinds."""
