"""The retention report: built from real marts (real dbt on a real Postgres), loaded by a
headless Chromium, and served through the Airflow UI plugin by a real API server."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dbt"))  # raw-data builders

import product_raw  # noqa: E402

from retention import runtime  # noqa: E402
from retention.report import build_report  # noqa: E402
from support.databases import create_database  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "docs" / "images" / "retention_report.png"
SCREENSHOT_CONTENTS = SCREENSHOT.with_suffix(".json")  # the charts it shows, checked against the report


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def marts_url(warehouse_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = create_database(warehouse_server_url, f"t_report_{uuid.uuid4().hex[:6]}")
    product, stripe = product_raw.build_world()
    stripe.load(url)
    product.load(url)
    target = Path(tmp_path_factory.mktemp("dbt_target"))
    as_of = ["--vars", json.dumps({"product_as_of_date": "2024-06-30"})]
    product_raw.dbt(url, "seed", *as_of, target=target)
    product_raw.dbt(url, "run", *as_of, target=target)  # every mart; their tests run in tests/dbt
    return url


@pytest.fixture(scope="module")
def report(marts_url: str, tmp_path_factory: pytest.TempPathFactory):
    return build_report(marts_url, tmp_path_factory.mktemp("home") / "reports" / "retention_report.html")


def test_every_section_with_a_built_mart_is_drawn(report):
    drawn = set(report.rendered)
    assert {"cohort_logo_retention", "cohort_revenue_retention", "mrr_movements", "activation",
            "health_tiers", "health_backtest", "segments"} <= drawn, report.missing
    # what has no data yet says so instead of failing the page: no sync ran on this world
    assert report.missing["sync_runs"] == "no sync has run yet (activation.sync_runs)"
    assert set(report.missing) | drawn == {c.chart_id for c in report.charts}
    page = report.path.read_text()
    # works offline: plotly.js is inlined, nothing is fetched from a network
    assert not re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=[\"']?(?:https?:)?//", page)
    assert "Plotly.newPlot" in page
    assert page.count('class="plotly-graph-div"') == len(drawn)


def test_the_report_renders_in_a_headless_browser_without_errors(report, tmp_path: Path):
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--virtual-time-budget=15000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", report.path.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    rendered = int(re.search(r'data-charts-rendered="(\d+)"', body).group(1))
    errors = int(re.search(r'data-errors="(\d+)"', body).group(1))
    assert errors == 0, dom.stdout[-3000:]
    assert rendered == len(report.rendered)
    # every chart drew its SVG
    assert dom.stdout.count('class="main-svg"') >= len(report.rendered)

    shot = tmp_path / "report.png"
    subprocess.run([*base, "--window-size=1280,2400", f"--screenshot={shot}", report.path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    # The README's image is this screenshot; beside it, what the page it shows holds.
    shown = screenshot_contents(report)
    if os.environ.get("RETENTION_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOT)
        SCREENSHOT_CONTENTS.write_text(json.dumps(shown, indent=2) + "\n")
    assert json.loads(SCREENSHOT_CONTENTS.read_text()) == shown, (
        "the report's charts changed since the README screenshot was taken: refresh it with "
        "RETENTION_UPDATE_SCREENSHOT=1 .venv/bin/python -m pytest tests/plugins/report/test_report.py -k browser")


def screenshot_contents(report) -> dict:
    """What the screenshot shows, in words: the charts drawn, in page order, with their titles."""
    return {"charts": [{"id": c.chart_id, "title": c.title} for c in report.charts if not c.missing],
            "not_drawn": sorted(c.chart_id for c in report.charts if c.missing)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(report, airflow_home: Path, tmp_path_factory: pytest.TempPathFactory,
               warehouse_server_url: str) -> Iterator[tuple[str, str]]:
    """A real Airflow API server whose RETENTION_HOME holds the report; yields (base_url, password)."""
    from retention.config import settings

    tmp_path = tmp_path_factory.mktemp("api")
    home = report.path.parent.parent
    port = _free_port()
    cfg = settings({"RETENTION_HOME": str(REPO), "AIRFLOW_HOME": str(airflow_home)})
    env = runtime.child_env(warehouse_server_url, cfg)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"analyst": "s3cret-pw"}))
    env.update({
        "RETENTION_HOME": str(home),
        "RETENTION_REPORTS_DIR": str(report.path.parent),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "analyst:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__PORT": str(port),
    })
    log = open(tmp_path / "api-server.log", "w")
    proc = subprocess.Popen([runtime.airflow_bin(), "api-server", "--port", str(port), "--host", "127.0.0.1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "api-server did not start"
            time.sleep(0.5)
        yield base, "s3cret-pw"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_the_airflow_ui_serves_the_report_and_the_docs_to_a_logged_in_user(api_server, report):
    base, password = api_server
    (report.path.parent.parent / "dbt_project" / "target").mkdir(parents=True)
    (report.path.parent.parent / "dbt_project" / "target" / "index.html").write_text("<title>dbt Docs</title>")

    assert httpx.get(f"{base}/retention/report/").status_code == 401  # not without a login
    token = httpx.post(f"{base}/auth/token", json={"username": "analyst", "password": password}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    page = httpx.get(f"{base}/retention/report/", headers=auth)
    assert page.status_code == 200
    assert "Retention report" in page.text and "plotly-graph-div" in page.text
    assert "dbt Docs" in httpx.get(f"{base}/retention/dbt-docs/", headers=auth).text
    missing = httpx.get(f"{base}/retention/data-docs/", headers=auth)
    assert missing.status_code == 404 and "not built yet" in missing.text
    escape = httpx.get(f"{base}/retention/report/..%2F..%2F..%2F..%2Fetc%2Fpasswd", headers=auth)
    assert escape.status_code == 404 and "root:" not in escape.text  # nothing outside the site

    # the three pages are in the UI's navigation
    plugins = httpx.get(f"{base}/api/v2/plugins", headers=auth).json()["plugins"]
    views = {v["name"]: v["href"] for p in plugins if p["name"] == "retention" for v in p["external_views"]}
    assert views == {"Retention report": "/retention/report/", "dbt docs": "/retention/dbt-docs/",
                     "Data quality docs": "/retention/data-docs/"}


def test_the_ui_shows_the_task_logs_of_a_demo_run(api_server, airflow_env, fresh_db: str):
    """``retention demo`` runs the DAGs with ``airflow dags test`` (tasks inside that process,
    no log files of Airflow's own); the demo's runner writes each task's log where the UI
    reads it. Here it runs ``monitor_freshness`` on an empty warehouse: its tasks fail with
    a line saying what is stale, and that line is in the log the API server returns."""
    from retention.demo import run_dags

    base, password = api_server
    [outcome] = run_dags((("monitor_freshness", {}),), airflow_env(fresh_db))
    assert outcome.state.startswith("failed")  # nothing ever arrived in this warehouse
    token = httpx.post(f"{base}/auth/token", json={"username": "analyst", "password": password}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    runs = httpx.get(f"{base}/api/v2/dags/monitor_freshness/dagRuns", params={"order_by": "-run_after", "limit": 1},
                     headers=auth).json()["dag_runs"]
    assert runs[0]["state"] == "failed"
    logs = httpx.get(f"{base}/api/v2/dags/monitor_freshness/dagRuns/{runs[0]['dag_run_id']}/taskInstances/"
                     "check_events/logs/1", headers=auth)
    assert logs.status_code == 200, logs.text[:2000]
    events = [line.get("event", "") for line in logs.json()["content"]]
    assert any("starting task_id=check_events" in event for event in events), events[:20]
    assert any("events is stale: newest raw.load_manifest never arrived" in event for event in events), events
    assert not any("starting task_id=check_stripe" in event for event in events)  # only this task's part
