"""Failure alerts: an Airflow notifier on every task of every DAG (``DEFAULT_ARGS``).

When a task fails for good (after its retries), :class:`FailureAlert` posts one message
to Slack through :class:`retention.hooks.slack.SlackHook` (connection ``slack_alerts``),
and sends one email through the SMTP provider's ``SmtpNotifier`` when
``RETENTION_ALERT_EMAIL`` names recipients (connection ``smtp_default``, or the one in
``[email] email_conn_id``). Without a Slack alert connection it does nothing but log one
line saying so; a failing alert channel is logged and never fails anything else.

What an alert holds: the DAG, the task (and map index), the run, the try, the error's
type and its message with anything that looks like an email address, a URL or a token
replaced, cut to 300 characters, and a link to the task's log. Our errors carry keys,
field names and statuses, never values or secrets (see ``DEVELOPERS.md``); the scrubbing
is a second line of defence.
"""

from __future__ import annotations

import html
import logging
import os
import re
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

SLACK_ALERT_CONN_ID = "slack_alerts"
ALERT_EMAIL_ENV = "RETENTION_ALERT_EMAIL"
MAX_ERROR_CHARS = 300

_SCRUB = (
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<url>"),
    (re.compile(r"\bxox[a-z]-[\w-]+", re.I), "<token>"),
    (re.compile(r"(?i)(?<![<\w])(bearer|basic|token|password|secret|api[_-]?key)(\s*[:=]\s*|\s+)[^\s<]\S*"),
     r"\1 <redacted>"),
    (re.compile(r"\b[A-Za-z0-9_-]{32,}\b"), "<redacted>"),
)


def scrub(text: str) -> str:
    """``text`` without email addresses, URLs or token-like strings, cut to a few lines."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def alert_text(context: dict[str, Any]) -> tuple[str, str]:
    """(title, details) of the alert for a task failure context; no secrets, no personal data."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    run_id = getattr(context.get("dag_run"), "run_id", None) or context.get("run_id") or "?"
    exc = context.get("exception")
    error = f"{type(exc).__name__}: {scrub(str(exc))}" if exc is not None else "no exception recorded"
    task = task_id + (f"[{map_index}]" if map_index not in (None, -1) else "")
    title = f"Airflow: {dag_id}.{task} failed"
    lines = [f"run {run_id}, try {getattr(ti, 'try_number', '?')}", error]
    log_url = getattr(ti, "log_url", None)
    if log_url:
        lines.append(f"log: {log_url}")
    return title, "\n".join(lines)


class FailureAlert(BaseNotifier):
    """Posts one alert per failed task to Slack (and email where configured)."""

    template_fields = ()

    def __init__(self, slack_conn_id: str = SLACK_ALERT_CONN_ID, smtp_conn_id: str | None = None) -> None:
        super().__init__()
        self.slack_conn_id = slack_conn_id
        self.smtp_conn_id = smtp_conn_id

    def notify(self, context: dict[str, Any]) -> None:
        title, details = alert_text(context)
        self._slack(title, details)
        self._email(title, details, context)

    def _slack(self, title: str, details: str) -> None:
        from airflow.sdk import BaseHook

        try:
            BaseHook.get_connection(self.slack_conn_id)
        except Exception:  # noqa: BLE001 - AirflowNotFoundException and its relatives
            log.info("failure alert: no Slack connection %r, so no Slack alert (%s)", self.slack_conn_id, title)
            return
        from retention.hooks.http import HttpHookError
        from retention.hooks.slack import SlackHook

        hook = SlackHook(self.slack_conn_id)
        text = f":rotating_light: *{_escape(title)}*\n{_escape(details)}"
        try:
            hook.post(f"{title}. {details}"[:2900], [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}])
            log.info("failure alert posted to Slack (connection %r)", self.slack_conn_id)
        except HttpHookError as exc:
            log.error("failure alert: Slack did not take it: %s", exc)
        finally:
            hook.close()

    def _email(self, title: str, details: str, context: dict[str, Any]) -> None:
        recipients = [a.strip() for a in os.environ.get(ALERT_EMAIL_ENV, "").split(",") if a.strip()]
        if not recipients:
            return
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        body = "<p>" + html.escape(details).replace("\n", "<br>") + "</p>"
        try:
            SmtpNotifier(to=recipients, smtp_conn_id=self.smtp_conn_id, subject=title, html_content=body).notify(context)
            log.info("failure alert emailed to %d recipient(s)", len(recipients))
        except Exception as exc:  # noqa: BLE001 - an alert channel failing must not fail anything else
            log.error("failure alert: email not sent: %s", type(exc).__name__)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
