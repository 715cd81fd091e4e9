"""The image's Python environment, built the way the Dockerfile builds it, imports every DAG.

No Docker engine runs on our machines, so the image's `RUN` steps are replayed on the
host: a fresh virtualenv of the same Python minor version, `uv` at the Dockerfile's pinned
version, `uv pip sync` of requirements/requirements.lock, the project installed without
dependencies, then the DAG files parsed by Airflow's own `DagBag` (what the image's
dag-processor does) with the compose file's settings. A package missing from the lock, a
DAG importing something only the dev venv has, or a lock that no longer installs fails
here. `--compile-bytecode` is left out: it only writes `.pyc` files (70 s instead of 7 s
here) and changes nothing that is imported.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text()
UV = Path(sys.executable).parent / "uv"

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_dockerfile_steps_are_the_ones_replayed_here():
    """If the Dockerfile changes how it installs, this test must change with it."""
    base = re.search(r"^FROM apache/airflow:([\d.]+)-python(3\.\d+)$", DOCKERFILE, re.M)
    assert base, "the image must build FROM apache/airflow:<version>-python<minor>"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == base.group(2)
    uv_version = re.search(r"pip install --no-cache-dir uv==([\d.]+)", DOCKERFILE).group(1)
    assert _run([str(UV), "--version"]).stdout.split()[1] == uv_version
    assert re.search(r"uv pip sync --compile-bytecode --python .+? requirements/requirements\.lock", DOCKERFILE)
    assert re.search(r"uv pip install --python .+? --no-deps -e \.", DOCKERFILE)


def test_the_locked_environment_imports_every_dag(tmp_path: Path):
    venv = tmp_path / "image-venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([str(UV), "pip", "sync", "--python", str(python), str(REPO / "requirements" / "requirements.lock")], cwd=REPO)
    _run([str(UV), "pip", "install", "--python", str(python), "--no-deps", "-e", str(REPO)], cwd=REPO)

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["x-airflow-common"]["environment"]
    home = tmp_path / "airflow"
    home.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "AIRFLOW_HOME": str(home),
        # the image's layout, with this checkout where the image has /opt/retention
        "RETENTION_HOME": str(REPO),
        "AIRFLOW__CORE__DAGS_FOLDER": compose["AIRFLOW__CORE__DAGS_FOLDER"].replace("/opt/retention", str(REPO)),
        "AIRFLOW__CORE__LOAD_EXAMPLES": compose["AIRFLOW__CORE__LOAD_EXAMPLES"],
    }
    script = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag()\n"
        "print(json.dumps({'dags': sorted(bag.dag_ids),"
        " 'errors': {k: v.strip().splitlines()[-1] for k, v in bag.import_errors.items()}}))\n"
    )
    proc = _run([str(python), "-c", script], env=env, cwd=tmp_path)
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert parsed["dags"] == sorted(p.stem for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
    # the CLI the containers' entrypoint and the README use
    assert "stripe-ingest" in _run([str(venv / "bin" / "retention"), "--help"], env=env, cwd=tmp_path).stdout
