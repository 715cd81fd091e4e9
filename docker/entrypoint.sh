#!/usr/bin/env bash
# Derive the Airflow connection and dbt profile variables from WAREHOUSE_URL (the one
# configuration source), then hand over to the official Airflow entrypoint.
set -euo pipefail
if [[ -z "${WAREHOUSE_URL:-}" ]]; then
  echo "error: WAREHOUSE_URL is not set; put it in .env (see .env.example)" >&2
  exit 2
fi
eval "$(retention env --no-check)"
exec /entrypoint "$@"
