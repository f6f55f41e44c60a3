"""semid: Semantic IDs for recommendation, from Amazon Reviews data to results and a demo."""

import importlib
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``semid.load`` (:func:`semid.serve.api.load`), imported on first use so that ``import semid`` stays cheap."""
    if name == "load":
        return importlib.import_module("semid.serve.api").load
    raise AttributeError(f"module 'semid' has no attribute {name!r}")
