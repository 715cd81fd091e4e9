"""``python -m retention.local_servers <vendor> [--port N] [--set key=value ...]``."""

import sys

from retention.local_servers.base import main

sys.exit(main())
