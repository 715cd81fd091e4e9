"""docker-compose.yml: valid, complete, no committed secrets, every mounted path exists.

No Docker engine runs on our machines, so the file is checked, not started.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
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
    result = subprocess.run(
        [*cmd, "--env-file", str(_filled_env(tmp_path)), "-f", str(COMPOSE), "config", "-q"],
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
    mounts = list(spec["x-airflow-common"]["volumes"])
    for service in spec["services"].values():
        mounts += service.get("volumes", [])
    for mount in mounts:
        source = mount.split(":", 1)[0]
        if source in named:
            continue
        assert (REPO / source).exists(), f"bind-mounted path {source} does not exist"
    dockerfile = REPO / "Dockerfile"
    for src in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile.read_text(), re.M):
        for path in src.split():
            assert (REPO / path).exists(), f"Dockerfile copies missing {path}"


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
