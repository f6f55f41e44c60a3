"""The ``semid`` command line: one subcommand per stage, plus ``run`` for the whole pipeline.

Each module in this package registers its subcommands on :data:`app`; they stay thin and call
the stage functions.
"""

from __future__ import annotations

import importlib

from semid.cli.common import app

# Modules that register subcommands on `app`, in the order they appear in --help.
COMMAND_MODULES = ["semid.cli.data", "semid.cli.download", "semid.cli.embed", "semid.cli.ids",
                   "semid.cli.train", "semid.cli.rank", "semid.cli.evaluate", "semid.cli.compare",
                   "semid.cli.pipeline", "semid.cli.experiment", "semid.cli.serve", "semid.cli.analyze", "semid.cli.report"]

for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def main() -> None:
    app()


__all__ = ["app", "main"]
