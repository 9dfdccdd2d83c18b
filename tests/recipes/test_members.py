"""Member run names of `fashiontag clothing`: the config's run name plus what the member's config name adds."""

from __future__ import annotations

import pytest

from fashiontag.core.config import load_config
from fashiontag.core.errors import ConfigError
from fashiontag.recipes.members import member_configs


def _names(config: str, members: list[str], *sets: str) -> list[str]:
    cfg = load_config(config, [f"ensemble.members=[{','.join(members)}]", *sets])
    return [c["exp"] for c, _ in member_configs(cfg, config, list(sets))]


def test_member_runs_are_named_by_what_their_config_adds():
    assert _names("clothing_cpu", ["clothing_cpu_lite1", "clothing_cpu_lite2"]) == [
        "clothing_cpu", "clothing_cpu_lite1", "clothing_cpu_lite2"]
    # A config that is itself a variant: the shared "clothing_cpu_" is not repeated in the members' names.
    assert _names("clothing_cpu_fast", ["clothing_cpu_lite1", "clothing_cpu_lite2"]) == [
        "clothing_cpu_fast", "clothing_cpu_fast_lite1", "clothing_cpu_fast_lite2"]
    # exp renames the whole family; a member with nothing in common keeps its whole name.
    assert _names("clothing_cpu", ["clothing_cpu_lite2", "demo"], "exp=mine") == ["mine", "mine_lite2", "mine_demo"]


def test_two_members_with_one_run_name_are_refused():
    with pytest.raises(ConfigError, match="same run name"):
        _names("clothing_cpu", ["clothing_cpu_lite1", "configs/clothing_cpu_lite1.yaml"])
