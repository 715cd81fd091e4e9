"""docker-compose.yml, docker-compose.dev.yml, the Dockerfile and the entrypoint: valid,
complete, no committed secrets, every named path exists, URLs survive hostile passwords.

No Docker engine runs on our machines, so the files are checked, not started; the
entrypoint's URL building runs for real.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_DEV = REPO / "docker-compose.dev.yml"
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
HOSTILE = "p@ss/w#rd:%?&= 'x\\\"{}$(id)`"  # breaks a naive URL, JSON or shell string
EXPECTED_SERVICES = {
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
    "airflow-worker", "airflow-init", "redis", "postgres", "warehouse",
}


def _compose_cmd() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True
    ).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _filled_env(tmp_path: Path) -> Path:
    """.env.example with every empty value filled in, as a user's .env would be."""
    lines = [
        f"{line}placeholder-value" if re.fullmatch(r"[A-Z_]+=", line) else line
        for line in (REPO / ".env.example").read_text().splitlines()
    ]
    env = tmp_path / ".env"
    env.write_text("\n".join(lines) + "\n")
    return env


def test_compose_config_is_valid_with_a_filled_env(tmp_path):
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    for files in ([COMPOSE], [COMPOSE, COMPOSE_DEV]):
        result = subprocess.run(
            [*cmd, "--env-file", str(_filled_env(tmp_path)), *(arg for f in files for arg in ("-f", str(f))), "config", "-q"],
            capture_output=True, text=True, cwd=REPO,
        )
        assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets():
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*cmd, "--env-file", str(REPO / ".env.example"), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode != 0
    assert "in .env" in result.stderr


def test_services_are_shaped_like_the_official_airflow_compose():
    spec = yaml.safe_load(COMPOSE.read_text())
    assert EXPECTED_SERVICES <= set(spec["services"])
    common = spec["x-airflow-common"]["environment"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "SimpleAuthManager" in common["AIRFLOW__CORE__AUTH_MANAGER"]
    assert spec["services"]["airflow-worker"]["command"] == "celery worker"


def test_every_bind_mounted_path_exists():
    spec = yaml.safe_load(COMPOSE.read_text())
    named = set(spec.get("volumes") or {})
    mounts = []
    for compose_spec in (spec, yaml.safe_load(COMPOSE_DEV.read_text())):
        for key, value in compose_spec.items():
            if key.startswith("x-") and isinstance(value, dict):
                mounts += value.get("volumes", [])
        for service in compose_spec["services"].values():
            mounts += service.get("volumes", [])
    assert mounts
    for mount in mounts:
        source = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", mount.split(":/", 1)[0])  # ${VAR:-default}
        if source in named:
            continue
        assert (REPO / source).exists(), f"bind-mounted path {source} does not exist"
    copied = [path for src in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", DOCKERFILE.read_text(), re.M)
              for path in src.split()]
    for path in copied:
        assert (REPO / path).exists(), f"Dockerfile copies missing {path}"
    for path in ("docker/entrypoint.sh", "requirements/requirements.lock", "plugins/", "dags/",
                 "dbt_project/", "expectations/"):
        assert path in copied, f"the image must contain {path}"
    for line in (REPO / ".dockerignore").read_text().split():
        assert not any(path.rstrip("/") == line.rstrip("/") for path in copied), f".dockerignore drops {line}"


def test_the_image_installs_the_lock_on_the_matching_airflow_and_python():
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", text, re.M)
    lock = (REPO / "requirements" / "requirements.lock").read_text()
    assert base and f"apache-airflow=={base.group(1)} " in lock
    assert f"--python-version {base.group(2)}" in (REPO / "Makefile").read_text()
    assert re.search(r"uv pip sync .*requirements/requirements\.lock", text)
    assert "--no-deps -e ." in text  # the project itself adds no dependency beyond the lock


def test_the_dev_override_mounts_the_code_into_every_airflow_service():
    base = yaml.safe_load(COMPOSE.read_text())["services"]
    dev = yaml.safe_load(COMPOSE_DEV.read_text())["services"]
    assert set(dev) == {name for name in base if name.startswith("airflow-")}
    for service in dev.values():
        targets = {m.split(":")[1] for m in service["volumes"]}
        assert targets == {f"/opt/retention/{d}" for d in ("dags", "plugins", "dbt_project", "expectations")}
    base_mounts = yaml.safe_load(COMPOSE.read_text())["x-airflow-common"]["volumes"]
    assert not any(m.startswith("./") for m in base_mounts), "the base stack must run from the image alone"


def _entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", str(ENTRYPOINT), *args], env={"PATH": path, **env},
                          capture_output=True, text=True, timeout=60)


def test_the_entrypoint_url_encodes_hostile_credentials():
    import sqlalchemy

    env = {"AIRFLOW_DB_PASSWORD": HOSTILE, "WAREHOUSE_USER": "ret@il", "WAREHOUSE_PASSWORD": HOSTILE,
           "WAREHOUSE_DB": "retention", "STRIPE_API_KEY": 'sk_"x\\', "STRIPE_BASE_URL": ""}
    metadata = _entrypoint(env, "url", "metadata")
    assert metadata.returncode == 0, metadata.stderr
    url = sqlalchemy.engine.make_url(metadata.stdout.strip())
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg2", "airflow", HOSTILE, "postgres", 5432, "airflow")
    celery = urlsplit(_entrypoint(env, "url", "celery-result").stdout.strip())
    assert celery.scheme == "db+postgresql" and unquote(celery.password) == HOSTILE and celery.hostname == "postgres"
    warehouse_url = _entrypoint(env, "url", "warehouse").stdout.strip()
    from retention import warehouse

    params = warehouse.parse_url(warehouse_url)
    assert (params.user, params.password, params.host, params.dbname) == ("ret@il", HOSTILE, "warehouse", "retention")
    stripe = json.loads(_entrypoint(env, "url", "stripe-connection").stdout)
    assert stripe == {"conn_type": "stripe", "host": None, "password": 'sk_"x\\'}

    missing = _entrypoint({"WAREHOUSE_USER": "u"}, "url", "metadata")
    assert missing.returncode != 0 and "AIRFLOW_DB_PASSWORD is not set" in missing.stderr


def test_the_entrypoint_exports_what_the_containers_need(tmp_path):
    env = {"AIRFLOW_DB_PASSWORD": HOSTILE, "WAREHOUSE_USER": "retention", "WAREHOUSE_PASSWORD": HOSTILE,
           "WAREHOUSE_DB": "retention", "STRIPE_API_KEY": "sk_test_abc", "RETENTION_HOME": str(REPO),
           "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_ENTRYPOINT": "env"}  # print the environment handed over
    result = _entrypoint(env, "-0")
    assert result.returncode == 0, result.stderr
    exported = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
    connection = json.loads(exported["AIRFLOW_CONN_WAREHOUSE"])
    assert connection["password"] == HOSTILE and connection["host"] == "warehouse"
    assert exported["WAREHOUSE_PASSWORD"] == HOSTILE  # the dbt profile's variables
    assert json.loads(exported["AIRFLOW_CONN_STRIPE_DEFAULT"])["password"] == "sk_test_abc"
    assert exported["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")


def test_no_secret_defaults_are_committed():
    text = COMPOSE.read_text()
    for var in ("AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_DB_PASSWORD", "WAREHOUSE_PASSWORD",
                "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"):
        for use in re.findall(r"\$\{" + var + r"([^}]*)\}", text):
            assert not use.startswith(":-"), f"{var} must not have a default in compose"
    example = dict(
        line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for key in ("AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_DB_PASSWORD", "WAREHOUSE_PASSWORD",
                "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "STRIPE_API_KEY"):
        assert example[key] == "", f".env.example must leave {key} empty"
    assert ".env" in (REPO / ".gitignore").read_text().split()
