"""The command line's progress bars and usage errors, as a person meets them.

Progress goes to stderr: on a terminal (a pseudo-terminal here) rich redraws the bar in
place; piped to a file, each step's final line is written once, so a log stays readable
and stdout keeps the JSON result. Usage errors are one line with a hint and exit 2.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from retention.cli import main
from retention.simulate.config import SimulationConfig
from retention.simulate.engine import simulate

RETENTION = str(Path(sys.executable).parent / "retention")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("company") / "tiny"
    result = simulate(SimulationConfig(preset="tiny", seed=5, out=out))
    return out, result.counts["events"]["files"]


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(WAREHOUSE_URL=url, COLUMNS="160")
    return env


def test_load_piped_to_a_file_writes_one_progress_line_and_json(company, fresh_db: str, tmp_path: Path):
    root, files = company
    out, err = tmp_path / "out.json", tmp_path / "err.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.run([RETENTION, "load", "--source", "events", "--path", str(root), "--workers", "2"],
                              env=_env(fresh_db), stdout=stdout, stderr=stderr, timeout=300)
    assert proc.returncode == 0, err.read_text()[-2000:]
    counts = json.loads(out.read_text())  # stdout is the result only
    assert counts["files_loaded"] == files and counts["rows_loaded"] > 0
    log = err.read_text()
    bars = [line for line in log.splitlines() if line.startswith("load events")]
    assert len(bars) == 1, log[-3000:]  # not redrawn line after line
    assert f"{files}/{files} files" in bars[0]
    assert f"{counts['rows_loaded']:,} rows" in bars[0] and "rows/s" in bars[0]
    assert not ANSI.search(log) and "\r" not in log  # no cursor movement in a file


def test_load_on_a_terminal_redraws_the_bar(company, fresh_db: str):
    root, files = company
    leader, follower = pty.openpty()
    proc = subprocess.Popen([RETENTION, "load", "--source", "events", "--path", str(root), "--workers", "1"],
                            env={**_env(fresh_db), "TERM": "xterm"}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert ANSI.search(screen)  # drawn in place
    assert f"{files}/{files}" in ANSI.sub("", screen)


@pytest.mark.parametrize("argv, message, hint", [
    (["nope"], "No such command 'nope'", "(see `retention --help`)"),
    (["load"], "Missing option '--source'", "(see `retention load --help`)"),
    (["gate", "--stage", "bronze"], "'bronze' is not one of 'marts', 'raw'", "(see `retention gate --help`)"),
    (["simulate", "--preset", "tiny", "--seeed", "1"], "No such option: --seeed", "(see `retention simulate --help`)"),
    (["load", "--source", "events", "--since", "yesterday"], "'yesterday' is not a date",
     "(see `retention load --help`)"),
    (["run", "--day", "2025-13-01"], "'2025-13-01' is not a date", "(see `retention run --help`)"),
    (["sync", "sideways"], "'sideways' is not one of", "(see `retention sync --help`)"),
])
def test_a_usage_error_is_one_line_with_a_hint(argv, message, hint, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and lines[0].endswith(hint)
    assert "Traceback" not in captured.err + captured.out


def test_the_warehouse_url_is_printed_masked(monkeypatch, fresh_db: str, capsys):
    secret_url = fresh_db.replace("postgresql://postgres@", "postgresql://postgres:pw-not-shown@")
    monkeypatch.setenv("WAREHOUSE_URL", secret_url)
    if secret_url == fresh_db:
        pytest.skip("the test warehouse URL has no user part to put a password in")
    # the embedded server trusts local connections, so any password is accepted
    assert main(["warehouse"]) == 0
    printed = capsys.readouterr().out.strip()
    assert "pw-not-shown" not in printed and "***" in printed
    assert main(["warehouse", "--show-password"]) == 0
    assert capsys.readouterr().out.strip() == secret_url


def test_segments_lists_sizes_and_a_segments_members(fresh_db: str, monkeypatch, capsys):
    from retention import warehouse

    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create schema marts")
        conn.execute("""create table marts.segment_members (member_key text primary key, segment_key text, account_id text,
            user_id text, reason text, email text, name text, account_name text, plan text, mrr numeric(14, 2),
            health_score numeric(5, 1), tier text)""")
        conn.execute("""insert into marts.segment_members values
            ('win_back:a1', 'win_back', 'a1', null, 'churned 40 days ago', 'x@a1.test', 'X', 'A one', 'pro', 0, null, null),
            ('win_back:a2', 'win_back', 'a2', null, 'churned 35 days ago', 'y@a2.test', 'Y', 'A two', 'team', 120, 41.0, 'at_risk'),
            ('win_back:a3', 'win_back', 'a3', null, 'churned 31 days ago', 'z@a3.test', 'Z', 'A three', 'pro', 80, 55.5, 'neutral'),
            ('inactive:a4', 'inactive', 'a4', null, 'no activity for 21 days', 'w@a4.test', 'W', 'A four', 'pro', 50, 20.0, 'at_risk')""")
    monkeypatch.setenv("WAREHOUSE_URL", fresh_db)
    assert main(["segments"]) == 0
    sizes = capsys.readouterr().out
    assert re.search(r"inactive\s*│\s*1", sizes) and re.search(r"win_back\s*│\s*3", sizes), sizes
    assert main(["segments", "win_back", "--limit", "2", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("account_id,user_id,account_name,email,plan,mrr,tier,reason")
    assert [line.split(",")[0] for line in lines[1:]] == ["a2", "a3"]  # largest MRR first, two of three
    assert main(["segments", "welcome_call"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'welcome_call' has no members; segments with members: inactive, win_back" in err[0]


def test_stripe_ingest_shows_pages_and_rows_per_object(fresh_db: str, tmp_path: Path):
    from fakes.stripe_dataset import API_KEY, build_dataset
    from retention.hooks.stripe import connection_json
    from retention.simulate.stripe_server import serve

    dataset = build_dataset(tmp_path, customers=60)  # 120 invoices: two pages of 100
    invoices = len(dataset.ids("invoices"))
    with serve(dataset.root, api_key=API_KEY) as server:
        env = {**_env(fresh_db), "AIRFLOW_CONN_STRIPE_DEFAULT": connection_json(server.base_url, API_KEY)}
        proc = subprocess.run([RETENTION, "stripe-ingest", "--object", "invoices", "--object", "prices"], env=env,
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]  # Airflow logs too
    assert [counts["object"] for counts in printed] == ["invoices", "prices"]
    bars = {line.split()[1]: line for line in proc.stderr.splitlines() if line.startswith("stripe ")}
    assert set(bars) == {"invoices", "prices"}, proc.stderr[-3000:]
    assert "2 pages" in bars["invoices"] and f"{invoices} rows" in bars["invoices"], bars["invoices"]


@pytest.mark.parametrize("argv, tool_args", [
    (["dbt", "--version"], ["--version"]),
    (["--debug", "dbt", "run", "--select", "mrr_movements", "--debug", "-h"],
     ["run", "--select", "mrr_movements", "--debug", "-h"]),
    (["airflow", "dags", "test", "ingest_events", "-c", '{"full": true}', "--help"],
     ["dags", "test", "ingest_events", "-c", '{"full": true}', "--help"]),
    (["airflow", "--", "x"], ["--", "x"]),
])
def test_pass_through_hands_every_argument_to_the_tool(argv, tool_args):
    """What ``retention dbt|airflow ...`` parses into the tool's argument list (the
    subprocess tests in test_cli_errors.py show the flags reach the real tools)."""
    import typer

    from retention import cli

    group = typer.main.get_command(cli.build_app())
    ctx = group.make_context("retention", cli._with_pass_through(argv))
    name, *rest = [*ctx._protected_args, *ctx.args]
    sub = group.get_command(ctx, name).make_context(name, rest, parent=ctx)
    assert sub.params["args"] == tool_args
