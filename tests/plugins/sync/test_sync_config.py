"""The sync configuration: validated on load, one line per mistake; the committed file and
its generated dbt exposures stay in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.config import settings
from retention.sync import config, exposures
from retention.sync.config import SyncConfigError

GOOD = """
syncs:
  - name: accts
    destination: {kind: files}
    identity: {column: account_id, kind: account_id}
    mapping: {account_id: account_id, plan: plan}
"""


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "syncs.yml"
    path.write_text(text)
    with pytest.raises(SyncConfigError) as exc:
        config.load(path)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.mark.parametrize("change, expected", [
    (("kind: files", "kind: mailchimp"), "sync 'accts': destination.kind: unknown kind 'mailchimp'"),
    (("mapping: {account_id: account_id, plan: plan}", "mapping: {}"), "sync 'accts': mapping: map at least one"),
    (("mapping: {account_id: account_id, plan: plan}", "mapping: {plan: 'Plan Name'}"),
     "sync 'accts': mapping: field 'plan': the column must be"),
    (("kind: account_id}", "kind: phone}"), "sync 'accts': identity.kind: Input should be"),
    (("- name: accts", "- name: Accts"), "sync 'Accts': name: must match"),
    (("identity:", "limits: {max_change_pct: 0}\n    identity:"), "sync 'accts': limits.max_change_pct: Input should be greater than 0"),
    (("identity:", "identiy: {}\n    identity:"), "sync 'accts': identiy: unknown key"),
])
def test_a_mistake_is_one_line_naming_file_sync_and_key(tmp_path: Path, change, expected):
    assert expected in _error(tmp_path, GOOD.replace(*change))


def test_other_mistakes_are_one_line_too(tmp_path: Path):
    assert "is not valid YAML" in _error(tmp_path, "syncs: [\n")
    assert "duplicate sync name 'accts'" in _error(tmp_path, GOOD + GOOD.split("syncs:")[1])
    assert "sync #1: name: Field required" in _error(tmp_path, "syncs:\n  - destination: {kind: files}\n    mapping: {a: b}\n")
    missing = tmp_path / "nope.yml"
    with pytest.raises(SyncConfigError, match="no sync configuration here"):
        config.load(missing)


def test_the_environment_variable_points_at_another_file(tmp_path: Path):
    path = tmp_path / "other.yml"
    path.write_text(GOOD)
    assert config.config_path({config.CONFIG_ENV: str(path)}) == path
    assert config.config_path({}) == settings().home / "syncs.yml"
    sync_file = config.load(path)
    assert [s.name for s in sync_file.syncs] == ["accts"] and sync_file.log_retention_days == 30
    assert config.select(sync_file.syncs, None)[0].identity.steps == ("trim",)
    with pytest.raises(SyncConfigError, match="unknown sync"):
        config.select(sync_file.syncs, ["nope"])


def test_the_mapping_version_changes_with_the_mapping_only(tmp_path: Path):
    a = config.SyncSpec.model_validate({"name": "a", "destination": {"kind": "files"},
                                        "identity": {"column": "email", "kind": "email"},
                                        "mapping": {"email": "email", "plan": "plan"}})
    same = a.model_copy(update={"mapping": {"plan": "plan", "email": "email"}, "limits": a.limits})
    other = a.model_copy(update={"mapping": {"email": "email", "plan": "tier"}})
    assert a.mapping_version == same.mapping_version != other.mapping_version
    assert a.identity.steps == ("trim", "lower")  # email keys are always trimmed and lower-cased


def test_the_committed_config_is_valid_and_its_exposures_are_current():
    syncs = config.load(settings().home / config.DEFAULT_CONFIG).syncs
    assert any(s.enabled and s.destination.kind == "files" for s in syncs)
    committed = exposures.exposures_path().read_text()
    assert committed == exposures.render(syncs), "run `retention sync exposures` and commit the file"
