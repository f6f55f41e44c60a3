"""semid: Semantic IDs for recommendation, from Amazon Reviews data to results and a demo."""

__version__ = "0.1.0"
