"""What the dbt orchestration shares: where the project lives, the Cosmos profile mapping
for the ``warehouse`` connection, and the committed ``dbt ls`` listing the DAG renders from.

Rendering from a committed listing (Cosmos ``LoadMode.DBT_LS_FILE``) keeps DAG parsing
cheap: no dbt process, no database and no network when the scheduler parses the file.
After adding, renaming or removing a model, seed or test, refresh it with::

    python -m retention.dbt

(``tests/dbt/test_dbt_ls_file.py`` fails, saying so, when the listing is stale.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from retention.config import settings

LS_FILE_NAME = "dbt_ls.json"
# What Cosmos reads from each `dbt ls` line (cosmos.dbt.graph.parse_dbt_ls_output).
LS_OUTPUT_KEYS = (
    "name", "unique_id", "resource_type", "depends_on", "original_file_path", "tags", "config", "fqn",
)
LS_RESOURCE_TYPES = ("model", "seed", "snapshot", "test", "source")


def project_dir() -> Path:
    return settings().dbt_project_dir


def ls_file() -> Path:
    return project_dir() / LS_FILE_NAME


def dbt_executable() -> Path:
    """The venv's dbt, next to the running interpreter."""
    return Path(sys.executable).parent / "dbt"


def list_resources(target_dir: Path) -> str:
    """`dbt ls` of the project as sorted JSON lines. Needs no database: dbt only parses."""
    placeholders = {  # profiles.yml requires these; `dbt ls` never connects
        "WAREHOUSE_HOST": "localhost", "WAREHOUSE_USER": "dbt_ls", "WAREHOUSE_DBNAME": "dbt_ls",
    }
    env = {**placeholders, **os.environ}
    cmd = [
        str(dbt_executable()), "ls", "--quiet", "--output", "json", "--output-keys", *LS_OUTPUT_KEYS,
        "--resource-types", *LS_RESOURCE_TYPES,
        "--project-dir", str(project_dir()), "--profiles-dir", str(project_dir()),
        "--target-path", str(target_dir), "--log-path", str(target_dir / "logs"),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dbt ls failed; fix the project first:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in sorted(lines, key=lambda o: o["unique_id"]))


def refresh_ls_file() -> Path:
    """Rewrite the committed listing from the project as it is now."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ls_file().write_text(list_resources(Path(tmp)))
    return ls_file()


def warehouse_profile_mapping(conn_id: str = "warehouse") -> Any:
    """Cosmos profile mapping for the Postgres ``warehouse`` connection.

    Cosmos' stock ``PostgresUserPasswordProfileMapping`` requires a password, but the
    embedded warehouse has none (trust auth on a Unix socket, whose directory is the
    connection's host). This subclass accepts an empty password; everything else,
    including keeping the password out of profiles.yml (an env var), is Cosmos' own.
    """
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
        required_fields = ["host", "user", "dbname"]

        def get_dbt_value(self, name: str) -> Any:
            value = super().get_dbt_value(name)
            return "" if name == "password" and value is None else value

    return WarehouseProfileMapping(conn_id=conn_id, profile_args={"schema": "public"})


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    print(f"wrote {refresh_ls_file()}")
