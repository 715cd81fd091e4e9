"""Every command in the README's shell blocks, as a newcomer types it.

The test reads README.md's fenced ``bash``/``sh`` blocks and gives each command one rule:

* **run**: run as written (with ``bash``, in a scratch folder where ``.venv`` is this
  checkout's venv), against a fresh database of the test warehouse; it must exit 0.
  The only rewrite is :data:`CHEAPER` (the ``demo`` preset becomes ``tiny``, the same
  command on a company 17 times smaller), and a server command is started, must say
  where it listens, and is stopped.
* **skip**, with the reason (long, needs a deployment, or covered by another test).

Every ``retention`` command, run or skipped, is also parsed by the real command line
(unknown commands or options fail), and a README command without a rule fails the test,
so a new or changed command cannot go unchecked.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from retention import cli

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

# The same command on a smaller company (seconds instead of a minute).
CHEAPER = {"--preset demo": "--preset tiny"}

# First words of a command -> "run", "server" or the reason it is skipped. Longest match wins.
RULES: dict[str, str] = {
    "make demo": "the whole pipeline on the demo company (minutes); CI runs `make test`, the demo's parts are tested one by one",
    "make test": "this suite itself",
    ".venv/bin/retention simulate": "run",
    ".venv/bin/retention stripe-server": "server",
    ".venv/bin/retention load": "run",
    ".venv/bin/retention dbt build": "a full dbt build (minutes): tests/dbt builds the project with every test",
    ".venv/bin/retention gate": "needs built marts: tests/plugins/quality runs the gates on them",
    ".venv/bin/retention airflow dags test": "a full DAG run: tests/dags run every DAG with airflow dags test",
    ".venv/bin/retention sync status": "run",
    ".venv/bin/retention status": "run",
    ".venv/bin/retention run": "every pipeline DAG with airflow dags test (minutes): tests/dags run each DAG",
    ".venv/bin/retention segments": "needs built marts: tests/plugins/test_cli_progress.py lists members of a segments table",
    ".venv/bin/retention sync pools": "the scheduler set-up, after `airflow db migrate`: tests/integration/test_scheduler.py runs it",
    ".venv/bin/retention sync": "needs marts published by transform_dbt: tests/plugins/sync and tests/dags/test_sync_segments.py",
    "retention sync": "needs published marts and the vendors' local servers: tests/plugins/sync",
    "export": "sets a variable in your shell for the commands after it",
    "python -m retention.local_servers": "fixed ports for your machine: tests/plugins/local_servers start them on free ports",
    "curl": "reads a local server started above",
    'eval "$(.venv/bin/retention env)"': "run",
    "airflow": "an Airflow deployment (scheduler, API server): tests/integration/test_scheduler.py runs these commands",
    "cp .env.example .env": "the Docker stack: tests/test_compose.py checks its configuration",
    "echo": "the Docker stack: tests/test_compose.py checks its configuration",
    "docker compose": "needs Docker: tests/test_compose.py checks the compose configuration",
}


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped, ``a; b`` and
    ``a && b`` split, a trailing ``&`` (run in the background) removed; quotes kept."""
    found = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        found += _split(line)
    return found


def _split(line: str) -> list[str]:
    parts, buf, quote, i = [], "", None, 0
    while i < len(line):
        c = line[i]
        if quote:
            quote = None if c == quote else quote
            buf += c
        elif c in "'\"":
            quote, buf = c, buf + c
        elif c == "#" and (not buf or buf[-1].isspace()):
            break
        elif c == "&" and buf.endswith(">"):  # 2>&1
            buf += c
        elif c in ";&":
            parts.append(buf)
            buf = ""
            i += line.startswith("&&", i)
        else:
            buf += c
        i += 1
    return [p.strip() for p in [*parts, buf] if p.strip()]


def rule(command: str) -> tuple[str, str]:
    matches = [prefix for prefix in RULES if command == prefix or command.startswith(prefix + " ")]
    if not matches:
        raise AssertionError(f"README command without a rule in {__name__}.RULES: {command!r}")
    prefix = max(matches, key=len)
    return prefix, RULES[prefix]


def retention_args(command: str) -> list[str] | None:
    """The arguments of a ``retention`` call in ``command`` (also inside ``$(...)``), or None."""
    found = re.search(r"(?:^|\s|\$\()(?:\.venv/bin/)?retention((?:\s[^)\"]*)?)(?:$|[)\"])", command)
    return shlex.split(found.group(1)) if found else None


def parse_with_the_cli(args: list[str]) -> None:
    """Parse ``retention ARGS`` with the real command line, without running anything
    (a usage error raises; what ``dbt`` and ``airflow`` get is theirs to judge)."""
    group = typer.main.get_command(cli.build_app())
    ctx = group.make_context("retention", cli._with_pass_through(list(args)))
    name, *rest = [*ctx._protected_args, *ctx.args]
    command = group.get_command(ctx, name)
    assert command is not None, f"no such command: retention {name}"
    if name not in cli.PASS_THROUGH:
        command.make_context(name, rest, parent=ctx)


README_COMMANDS = [c for block in shell_blocks(README.read_text()) for c in commands(block)]


def test_the_readme_has_commands_and_each_has_a_rule():
    assert len(README_COMMANDS) > 20
    skipped = {}
    for command in README_COMMANDS:
        prefix, what = rule(command)
        if what not in ("run", "server"):
            skipped[prefix] = what
    print("skipped README commands:\n" + "\n".join(f"  {p}: {why}" for p, why in sorted(skipped.items())))


@pytest.mark.parametrize("command", [c for c in README_COMMANDS if retention_args(c) is not None])
def test_each_retention_command_parses(command):
    parse_with_the_cli(retention_args(command))


@pytest.fixture
def scratch(tmp_path: Path, fresh_db: str) -> tuple[Path, dict[str, str]]:
    """A folder to run README commands in: ``.venv`` is this checkout's venv."""
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update({
        "WAREHOUSE_URL": fresh_db, "RETENTION_HOME": str(REPO), "RETENTION_DATA_DIR": str(tmp_path / ".data"),
        "RETENTION_REPORTS_DIR": str(tmp_path / "reports"), "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "STRIPE_API_KEY": "sk_test_x",  # as the README's comment says
    })
    return tmp_path, env


def _server(command: str, cwd: Path, env: dict[str, str]) -> str:
    """Start a server command on a free port, wait until it says where it listens, stop it."""
    proc = subprocess.Popen(["bash", "-c", f"exec {command} --port 0"], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if " at http://127.0.0.1:" in line:
                return line
            assert time.monotonic() < deadline, f"{command}: no address in 60 s"
        raise AssertionError(f"{command} exited with {proc.wait()} before listening")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_the_readme_commands_run_in_order(scratch):
    """The runnable commands, in README order, each exits 0 (a later one may use an
    earlier one's output, as a reader's would)."""
    cwd, env = scratch
    ran = []
    for command in README_COMMANDS:
        _, what = rule(command)
        if what not in ("run", "server"):
            continue
        for costly, cheap in CHEAPER.items():
            command = command.replace(costly, cheap)
        if what == "server":
            assert "Stripe API for .data/demo-seed42" in _server(command, cwd, env)
        else:
            proc = subprocess.run(["bash", "-ec", command], cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert proc.returncode == 0, f"{command} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        ran.append(command)
    assert any("simulate" in c for c in ran) and any(" load " in c for c in ran), ran
    assert (cwd / ".data" / "demo-seed42" / "simulation.json").exists()
