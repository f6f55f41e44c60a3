"""matplotlib without a display (Agg backend), and atomic PNG writes, for every report's plots."""

from __future__ import annotations

from pathlib import Path

from semid.core import artifacts


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (works on servers without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = 110) -> None:
    """Write ``fig`` as a PNG atomically and close it."""
    with artifacts.atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
