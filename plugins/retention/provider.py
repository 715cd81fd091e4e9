"""What Airflow learns about this package through the ``apache_airflow_provider`` entry point.

Airflow lists a connection type in ``airflow connections`` and the UI's connection form
only when an installed package declares it here (a hook under ``plugins/`` alone does
not register one). Each destination adds its hook to :data:`CONNECTION_TYPES`.
"""

from __future__ import annotations

CONNECTION_TYPES: list[dict[str, str]] = [
    {"connection-type": "retention_webhook", "hook-class-name": "retention.hooks.webhook.WebhookHook"},
    {"connection-type": "retention_intercom", "hook-class-name": "retention.hooks.intercom.IntercomHook"},
    {"connection-type": "retention_slack", "hook-class-name": "retention.hooks.slack.SlackHook"},
    {"connection-type": "retention_hubspot", "hook-class-name": "retention.hooks.hubspot.HubSpotHook"},
    {"connection-type": "retention_customerio", "hook-class-name": "retention.hooks.customerio.CustomerIOHook"},
    {"connection-type": "retention_braze", "hook-class-name": "retention.hooks.braze.BrazeHook"},
]


def get_provider_info() -> dict:
    return {
        "package-name": "retention-pipeline",
        "name": "Retention pipeline",
        "description": "Connection types of the retention pipeline's segment sync destinations.",
        "versions": ["0.1.0"],
        "connection-types": CONNECTION_TYPES,
    }
