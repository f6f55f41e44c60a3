"""The provenance behind every number of a report: for each file it was read from, the command,
git commit, date, detected hardware and wall time that file recorded (``semid.core.artifacts``
writes them: ``provenance()`` into results, ``StageRun`` into manifests), the package versions,
and the resolved config of every stage whose manifest was read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from semid.core import artifacts
from semid.report.blocks import Section, code, table
from semid.report.collect import Context, Input

FIELDS = ("git", "command", "hardware", "versions")


def row(inp: Input, path: Path, rec: dict[str, Any], what: str = "") -> list[Any]:
    """file, command, commit, date, hardware, wall time: what ``rec`` recorded when it was written."""
    git = rec.get("git") or {}
    commit = git.get("commit") if isinstance(git, dict) else git
    commit = ", ".join(str(c)[:10] for c in commit) if isinstance(commit, list) else (str(commit)[:10] if commit else "–")
    dirty = " (dirty)" if isinstance(git, dict) and git.get("dirty") else ""
    hw = rec.get("hardware")
    wall = next((rec[k] for k in ("wall_time_s", "rank_wall_s", "analyze_s") if isinstance(rec.get(k), (int, float))), None)
    return [relative(path, inp.path) + what, code(rec["command"]) if rec.get("command") else "–", commit + dirty,
            rec.get("date") or rec.get("started") or "–", artifacts.describe_hardware(hw) if isinstance(hw, dict) else "–", wall]


def relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def section(ctx: Context) -> Section | None:
    rows: dict[Input, list[list[Any]]] = {}
    versions: dict[str, set[str]] = {}
    configs = []
    for path, (inp, obj) in ctx.files.items():
        if not isinstance(obj, dict) or not any(k in obj for k in FIELDS):
            continue
        mine = rows.setdefault(inp, [])
        mine.append(row(inp, path, obj))
        training = obj.get("training_provenance")
        if isinstance(training, dict):
            mine.append(row(inp, path, training, " (its training)"))
        for pkg, v in {**(obj.get("versions") or {}), **((training or {}).get("versions") or {})}.items():
            versions.setdefault(pkg, set()).add(str(v))
        if "stage" in obj and "config" in obj:
            configs.append(f"{inp.label}/{relative(path, inp.path)} ({obj['stage']}): {json.dumps(obj['config'], default=str)}")
    if not rows:
        return None
    sec = Section("Provenance", 2, [
        "Every number above comes from one of these files; each recorded, when it was written, the command that made it, the "
        "git commit of the code (dirty: uncommitted changes to code or configs), the date, the hardware as detected and the "
        "wall time (stage manifests: the stage; evaluations: ranking; analyses: the analysis)."])
    for inp, mine in rows.items():
        sec.add(f"**{code(inp.label)}** (files relative to it):", table(["file", "command", "git", "date", "hardware", "wall s"], mine, 1))
    if versions:
        sec.add("Package versions recorded in these files:",
                table(["package", "version(s)"], [[k, ", ".join(sorted(v))] for k, v in sorted(versions.items())]))
    if configs:
        sec.add("Resolved config of every stage whose manifest was read:", "```text\n" + "\n".join(configs) + "\n```")
    return sec


__all__ = ["section", "row"]
