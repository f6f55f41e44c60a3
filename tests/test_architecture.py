"""The package's shape (docs/architecture.md): layers, one registry of model kinds, one run folder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from semid.core.config import ModelConfig
from semid.models import registry

SRC = Path(__file__).resolve().parents[1] / "src" / "semid"

# lower layers never import from higher ones (a module may import from its own layer)
LAYERS = [
    ("semid.core",),
    ("semid.data", "semid.embed", "semid.evaluate.metrics", "semid.evaluate.bootstrap", "semid.evaluate.stats", "semid.sequences"),
    ("semid.ids",),
    ("semid.generative", "semid.training", "semid.checkpoints", "semid.ddp"),
    ("semid.models",),
    ("semid.evaluate", "semid.rank"),
    ("semid.experiments", "semid.pipeline"),
    ("semid.serve", "semid.analysis"),
    ("semid.report",),
    ("semid.cli",),
]


def layer_of(module: str) -> int:
    best, length = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > length:
                best, length = i, len(p)
    if best is None:
        raise AssertionError(f"{module} is in no layer of LAYERS: add it")
    return best


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def imports(tree: ast.Module, known: set[str] = frozenset()) -> set[str]:
    """Modules of ``semid`` a module imports, anywhere in it (``from pkg import sub`` counts as ``pkg.sub``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("semid"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("semid"))
    return found


def test_no_module_imports_from_a_layer_above_it():
    mods = modules()
    bad = []
    for name, tree in mods.items():
        if name == "semid":
            continue
        own = layer_of(name)
        for imp in imports(tree, set(mods)):
            if imp in mods and imp != "semid" and layer_of(imp) > own:
                bad.append(f"{name} (layer {own}) imports {imp} (layer {layer_of(imp)})")
    assert not bad, "\n".join(bad)


def test_the_layer_check_catches_an_upward_import():
    tree = ast.parse("from semid.models import registry\n")
    assert any(layer_of(i) > layer_of("semid.core.run") for i in imports(tree, set(modules())))


def kinds() -> set[str]:
    return set(registry.REGISTRY) | {k.replace("-", "_") for k in registry.REGISTRY}


def kind_lists(tree: ast.Module) -> list[int]:
    """Line numbers of list/tuple/set/dict displays naming two or more model kinds."""
    lines = []
    for node in ast.walk(tree):
        elts = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)) and elts:
            named = {e.value for e in elts if isinstance(e, ast.Constant) and e.value in kinds()}
            if len(named) >= 2:
                lines.append(node.lineno)
    return lines


def test_model_kinds_are_listed_only_by_the_registry():
    found = {name: kind_lists(tree) for name, tree in modules().items() if name != "semid.models.registry"}
    assert {k: v for k, v in found.items() if v} == {}
    assert kind_lists(ast.parse('KINDS = ["sasrec", "tiger"]\n')) == [1]  # the check itself can fail


def test_train_commands_rankers_and_comparison_rows_come_from_the_registry():
    from semid.cli.train import train_app
    from semid.experiments import compare

    commands = {c.name or c.callback.__name__ for c in train_app.registered_commands}
    assert commands == set(registry.REGISTRY)
    assert compare.CompareConfig().models == list(registry.rows())
    for spec in registry.REGISTRY.values():
        assert callable(spec.train) and callable(spec.ranker) and issubclass(spec.config, ModelConfig)
        for row in spec.rows.values():
            assert row.ids in (None, "semantic", "random")
            spec.config(**row.settings)  # every row's settings are valid config keys


def test_unknown_kind_is_named_and_old_spelling_reads():
    with pytest.raises(registry.ConfigError, match="unknown model kind 'nosuch'.*sasrec"):
        registry.get("nosuch")
    assert registry.get("sid_gru").kind == "sid-gru"  # config.json of folders written before 0.2


def test_one_owner_of_run_folder_paths():
    """Stage folders are spelled by semid.core.run only."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "run.py" and path.parent.name == "core":
            continue
        text = path.read_text()
        for folder in ('"models"', '"ids"', '"embed"', '"data"', '"compare"', '"study"'):
            if f"/ {folder}" in text or f"{folder} /" in text:
                offenders.append(f"{path.relative_to(SRC)} builds a path with {folder}")
    assert not offenders, "\n".join(offenders)


def test_a_missing_input_names_the_command_that_writes_it(tmp_path):
    from semid.core.errors import DataError
    from semid.core.run import RunFolder

    run = RunFolder(tmp_path / "r")
    with pytest.raises(DataError, match=r"train.parquet not found: run `semid prepare --out .*` first"):
        run.table("train")
    with pytest.raises(DataError, match="run `semid embed"):
        run.inputs({"embeddings": run.embeddings})
    with pytest.raises(DataError, match="run `semid ids train"):
        run.need(run.semantic_ids("rqvae-3x256"))
