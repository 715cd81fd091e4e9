"""The package declares its connection types to Airflow, and each names a real hook of that type."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from retention.provider import get_provider_info


def test_entry_point_is_installed():
    (ep,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("retention.")]
    assert ep.load() is get_provider_info
    assert get_provider_info()["package-name"] == ep.dist.metadata["name"]  # Airflow refuses a mismatch


def test_every_connection_type_names_its_hook():
    types = get_provider_info()["connection-types"]
    assert "retention_webhook" in {t["connection-type"] for t in types}
    for entry in types:
        module, _, name = entry["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == entry["connection-type"]
        assert hook.default_conn_name and hook.conn_name_attr and hook.hook_name
        behaviour = hook.get_ui_field_behaviour()
        assert set(behaviour) <= {"hidden_fields", "relabeling", "placeholders"}
