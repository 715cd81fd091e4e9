"""Local stand-ins for the SaaS APIs the sync pushes to (tests, demo, trying a sync without an account).

See :mod:`retention.local_servers.base`; run one with ``python -m retention.local_servers <vendor>``.
"""

from retention.local_servers.base import LocalServer, RunningServer, ServerControl, register, serve

__all__ = ["LocalServer", "RunningServer", "ServerControl", "register", "serve"]
