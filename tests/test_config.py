"""Typed configs: YAML + key=value overrides; unknown keys and bad values name the key."""

from __future__ import annotations

import pytest

from semid.core import config
from semid.core.errors import ConfigError
from semid.data.config import PrepareConfig
from semid.pipeline import RunConfig


def test_overrides_parse_yaml_scalars_and_nesting():
    got = config.parse_overrides(["k_core=10", "strict=false", "toy.n_users=50", "text_template=[\"{title}\"]"])
    assert got == {"k_core": 10, "strict": False, "toy": {"n_users": 50}, "text_template": ["{title}"]}


def test_yaml_file_then_overrides_then_fixed(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("prepare:\n  k_core: 3\n  split: temporal\n")
    cfg = config.load(PrepareConfig, f, ["k_core=4"], section="prepare", dataset="office")
    assert (cfg.k_core, cfg.split, cfg.dataset) == (4, "temporal", "office")


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'kcore'"):
        config.load(PrepareConfig, None, ["kcore=5"])


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match="bad value for 'k_core'"):
        config.load(PrepareConfig, None, ["k_core=-1"])
    with pytest.raises(ConfigError, match="bad value for 'split'"):
        config.load(PrepareConfig, None, ["split=random"])


def test_nested_unknown_key_in_run_config():
    with pytest.raises(ConfigError, match="unknown config key 'prepare.nope'"):
        config.load(RunConfig, None, ["prepare.nope=1"])


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        config.parse_overrides(["k_core"])
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(PrepareConfig, tmp_path / "nope.yaml")


def test_template_parts_must_hold_one_field():
    with pytest.raises(ConfigError, match="text_template"):
        config.load(PrepareConfig, None, ["text_template=[\"{title} {brand}\"]"])


def test_recipes_in_configs_folder_are_valid():
    from pathlib import Path

    for recipe in sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml")):
        data = config.read_yaml(recipe)
        if set(data) <= set(RunConfig.model_fields):
            config.load(RunConfig, recipe)


@pytest.mark.parametrize("path", sorted((__import__("pathlib").Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_recipe_in_configs_loads(path):
    """Each committed recipe validates against the config its command reads (keys renamed with the code)."""
    from semid.models import registry
    from semid.rank.config import StudyConfig

    data = config.read_yaml(path)
    kinds = [k for k in data if k in registry.REGISTRY]
    for kind in kinds:
        config.load(registry.get(kind).config, path, section=kind)
    if "representations" in data or "rank" in data:
        config.load(StudyConfig, path, section="study")
    elif not kinds:
        config.load(RunConfig, path)
