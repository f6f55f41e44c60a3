"""What the scale benchmarks write: ``results/<stem>.json`` (the record) and ``<stem>.md`` (a table),
with the command, the machine and the date."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch  # noqa: F401  (loaded, so that artifacts.hardware() sees a GPU where there is one)

from semid.core import artifacts

RESULTS = Path(__file__).resolve().parent / "results"


def write(stem: str, what: str, rows: list[dict], head: list[str], table: list[list], note: str = "", **machine) -> dict:
    """Write the record and its Markdown table (``head``: column names, ``table``: one list of cells a row)."""
    record = {"what": what, "command": f"python benchmarks/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:]), "rows": rows,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "hardware": artifacts.hardware(), **machine, "loadavg_1min_end": round(os.getloadavg()[0], 2)},
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# {what}", "", f"`{record['command'].strip()}`, {record['date']}, "
             f"{artifacts.describe_hardware(record['machine']['hardware'])}{note}, "
             f"load average at the end {record['machine']['loadavg_1min_end']}.", "",
             "| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"→ {RESULTS / (stem + '.json')}, {RESULTS / (stem + '.md')}")
    return record
