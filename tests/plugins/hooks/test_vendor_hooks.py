"""The Intercom and Slack hooks are registered connection types, and read their connections as documented."""

from __future__ import annotations

import importlib
import json

import pytest

from retention.hooks.intercom import IntercomHook
from retention.hooks.slack import SlackHook, SlackPostError
from retention.provider import get_provider_info


@pytest.mark.parametrize("conn_type", ["retention_intercom", "retention_slack"])
def test_connection_types_are_registered(conn_type):
    entry = next(e for e in get_provider_info()["connection-types"] if e["connection-type"] == conn_type)
    module, _, name = entry["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(module), name)
    assert hook.conn_type == conn_type and "relabeling" in hook.get_ui_field_behaviour()


def test_intercom_hook_sends_the_api_version_and_the_token(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_IC_X", json.dumps({"conn_type": "retention_intercom", "password": "t0k"}))
    hook = IntercomHook("ic_x")
    assert hook.base_url == "https://api.intercom.io"
    assert hook.auth_headers() == {"Authorization": "Bearer t0k", "Intercom-Version": "2.14", "Accept": "application/json"}
    assert hook.shown_path("/contacts/6762f0dd1bb69f9f2193bb83/tags/81") == "/contacts/{id}/tags/{id}"


def test_slack_hook_webhook_or_bot_token(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SL_HOOK", json.dumps(
        {"conn_type": "retention_slack", "password": "https://hooks.slack.com/services/T0/B0/SECRET"}))
    monkeypatch.setenv("AIRFLOW_CONN_SL_BOT", json.dumps({"conn_type": "retention_slack", "password": "xoxb-1"}))
    monkeypatch.setenv("AIRFLOW_CONN_SL_NONE", json.dumps({"conn_type": "retention_slack"}))
    webhook, bot = SlackHook("sl_hook"), SlackHook("sl_bot")
    assert webhook.via_webhook and webhook.auth_headers() == {}
    assert webhook.base_url == "https://hooks.slack.com/services/T0/B0/SECRET"
    assert not bot.via_webhook and bot.base_url == "https://slack.com/api"
    assert bot.auth_headers() == {"Authorization": "Bearer xoxb-1"}
    with pytest.raises(SlackPostError, match="set extra.channel"):
        bot.post("hello")
    with pytest.raises(SlackPostError, match="has no password"):
        SlackHook("sl_none").post("hello")


def test_intercom_default_budget_fits_a_ten_second_window():
    # Intercom: 10,000 calls a minute, counted in 10-second windows of 1,666
    assert 10 * IntercomHook.rate_limit_per_s + IntercomHook.burst <= 10_000 // 6
