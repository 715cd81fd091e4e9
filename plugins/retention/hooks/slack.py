"""Airflow hook that posts one Slack message: the sync digest and the failure alerts.

One connection type, ``retention_slack``, two ways to reach Slack:

* **Incoming webhook:** the connection's **password** is the webhook URL
  (``https://hooks.slack.com/services/T.../B.../...``; the URL itself is the secret, so it
  lives in the password field and never in a log or an error). The channel is the
  webhook's.
* **Bot token:** the **password** is a bot token (``xoxb-...``, scope ``chat:write``; the
  bot must be in the channel), the extra's ``channel`` the channel id, and **host** the
  Web API base (empty: ``https://slack.com/api``). It calls ``chat.postMessage``.

Examples::

    AIRFLOW_CONN_SLACK_DIGEST='{"conn_type": "retention_slack", "password": "https://hooks.slack.com/services/T0/B0/XXXX"}'
    AIRFLOW_CONN_SLACK_ALERTS='{"conn_type": "retention_slack", "password": "xoxb-...", "extra": {"channel": "C0123"}}'

Why not the Slack provider's ``SlackWebhookHook`` / ``SlackHook``: ``slack_sdk`` retries a
dropped connection on its own, and a message has no idempotency key, so a retry after
Slack accepted the post would post it twice. Here the shared
:class:`retention.hooks.http.HttpHook` rules apply instead: a 429 waits ``Retry-After``
(capped) and tries again, since Slack did not take the message; a timeout, reset or 5xx
is **not** retried and raises with ``outcome_unknown``, and the caller's send log decides.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

from retention.hooks.http import HttpHook, HttpHookError

SLACK_API = "https://slack.com/api"


class SlackPostError(HttpHookError):
    """Slack refused the message (``outcome_unknown=False``) or may have taken it (True)."""


class SlackHook(HttpHook):
    conn_name_attr = "slack_conn_id"
    default_conn_name = "slack_digest"
    conn_type = "retention_slack"
    hook_name = "Slack (retention digest and alerts)"

    default_base_url: ClassVar[str | None] = SLACK_API
    rate_limit_per_s: ClassVar[float] = 1.0  # about one message a second per channel
    burst: ClassVar[float] = 1.0
    reset_header = None

    def __init__(self, slack_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(slack_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "schema", "port"],
            "relabeling": {"password": "Webhook URL or bot token (xoxb-...)",
                           "host": "Web API base (bot token only; empty: slack.com/api)"},
            "placeholders": {"extra": '{"channel": "C0123456789"}'},
        }

    @cached_property
    def secret(self) -> str:
        secret = (self.connection.password or "").strip()
        if not secret:
            raise SlackPostError(
                f"Airflow connection {self.conn_id!r} has no password: set it to an incoming webhook URL "
                "or a bot token (xoxb-...).", retryable=False,
            )
        return secret

    @property
    def via_webhook(self) -> bool:
        return self.secret.startswith(("http://", "https://"))

    @cached_property
    def base_url(self) -> str:  # type: ignore[override]
        return self.secret if self.via_webhook else super().base_url

    def auth_headers(self) -> dict[str, str]:
        return {} if self.via_webhook else {"Authorization": f"Bearer {self.secret}"}

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> str | None:
        """Post one message; Slack's ``ts`` (bot token) or None (webhook). Never retried once it may have landed."""
        message: dict[str, Any] = {"text": text, **({"blocks": blocks} if blocks else {})}
        if self.via_webhook:
            response = self.request("POST", "", json=message, idempotent=False)
            if response.status_code == 200:
                return None
            code = response.text.strip()[:60] or None
            raise SlackPostError(f"Slack webhook (connection {self.conn_id!r}) refused the message: "
                                 f"{response.status_code} {code}", status=response.status_code, code=code,
                                 retryable=response.status_code != 404)
        channel = self.extra.get("channel")
        if not channel:
            raise SlackPostError(f"Airflow connection {self.conn_id!r}: set extra.channel to the channel id "
                                 "(a bot token posts with chat.postMessage)", retryable=False)
        response = self.request("POST", "/chat.postMessage", json={"channel": channel, **message}, idempotent=False)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok"):
            return str(body.get("ts"))
        code = str(body.get("error") or "") or None
        raise SlackPostError(f"Slack chat.postMessage (connection {self.conn_id!r}) refused the message: "
                             f"{response.status_code} {code}", status=response.status_code, code=code,
                             retryable=code not in ("invalid_auth", "not_authed", "channel_not_found"))
