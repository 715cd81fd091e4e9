#!/usr/bin/env bash
# The image's entrypoint. Every URL is built here from its parts, with the credentials
# URL-encoded (a `/`, `#`, `@` or `%` in a password must not break anything):
#
#   entrypoint.sh url metadata        Airflow's metadata DB (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD)
#   entrypoint.sh url celery-result   Celery's result backend (AIRFLOW__CELERY__RESULT_BACKEND_CMD)
#   entrypoint.sh url warehouse       WAREHOUSE_URL, or one built from WAREHOUSE_USER/PASSWORD/HOST/PORT/DB
#   entrypoint.sh [ARGS...]           export WAREHOUSE_URL, the Stripe connection and everything
#                                     `retention env` derives from WAREHOUSE_URL, then run the official
#                                     Airflow entrypoint (AIRFLOW_ENTRYPOINT, default /entrypoint)
set -euo pipefail

build() {
  python - "$1" <<'PY'
import json
import os
import sys
from urllib.parse import quote

kind = sys.argv[1]
env = os.environ


def need(name: str) -> str:
    if not env.get(name):
        sys.exit(f"error: {name} is not set; put it in .env (see .env.example)")
    return env[name]


def enc(value: str) -> str:
    return quote(value, safe="")


if kind in ("metadata", "celery-result"):
    scheme = "postgresql+psycopg2" if kind == "metadata" else "db+postgresql"
    print(f"{scheme}://{enc(env.get('AIRFLOW_DB_USER', 'airflow'))}:{enc(need('AIRFLOW_DB_PASSWORD'))}"
          f"@{env.get('AIRFLOW_DB_HOST', 'postgres')}:{env.get('AIRFLOW_DB_PORT', '5432')}"
          f"/{enc(env.get('AIRFLOW_DB_NAME', 'airflow'))}")
elif kind == "warehouse":
    if env.get("WAREHOUSE_URL"):
        print(env["WAREHOUSE_URL"])  # given whole: the user encoded it
    else:
        print(f"postgresql://{enc(need('WAREHOUSE_USER'))}:{enc(need('WAREHOUSE_PASSWORD'))}"
              f"@{env.get('WAREHOUSE_HOST', 'warehouse')}:{env.get('WAREHOUSE_PORT', '5432')}"
              f"/{enc(need('WAREHOUSE_DB'))}")
elif kind == "stripe-connection":
    print(json.dumps({"conn_type": "stripe", "host": env.get("STRIPE_BASE_URL") or None,
                      "password": need("STRIPE_API_KEY")}))
else:
    sys.exit(f"error: unknown URL kind {kind!r}: metadata, celery-result, warehouse or stripe-connection")
PY
}

if [[ "${1:-}" == "url" ]]; then
  build "${2:-}"
  exit 0
fi

WAREHOUSE_URL="$(build warehouse)"
export WAREHOUSE_URL
if [[ -z "${AIRFLOW_CONN_STRIPE_DEFAULT:-}" && -n "${STRIPE_API_KEY:-}" ]]; then
  AIRFLOW_CONN_STRIPE_DEFAULT="$(build stripe-connection)"
  export AIRFLOW_CONN_STRIPE_DEFAULT
fi
eval "$(retention env --no-check)"
exec "${AIRFLOW_ENTRYPOINT:-/entrypoint}" "$@"
