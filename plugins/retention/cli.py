"""``retention``: the command line (typer). It calls the same functions as the DAGs.

Sub-commands live next to the code they drive; each such module exposes
``register(app)`` (a :class:`typer.Typer`) and is listed in :data:`COMMAND_MODULES`.
Every error ends as one line on stderr, ``error: ... (hint)``, with a non-zero exit;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import enum
import importlib
import logging
import re
import shlex
import subprocess
import sys
from datetime import date
from typing import Annotated

import typer

from retention import runtime, warehouse
from retention.config import settings

# Modules that contribute sub-commands: each has register(app).
COMMAND_MODULES: tuple[str, ...] = (
    "retention.demo",
    "retention.quality.cli",
    "retention.load.cli",
    "retention.simulate.stripe_server",
    "retention.extract.cli",
    "retention.simulate.cli",
    "retention.report.cli",
    "retention.sync.cli",
    "retention.status",
)

# Sub-commands that hand every later argument, flags included, to another tool.
PASS_THROUGH = ("airflow", "dbt")
# Passed through as they are, and never read as ours.
_PASS_THROUGH_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, so log lines go above the
    progress bars (rich redirects stderr while they are drawn) instead of through them."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _State:
    debug = False


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retention-pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"retention {_version()}")
        raise typer.Exit(0)


def _root(
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="debug logging")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an error")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="print the version and exit")] = False,
) -> None:
    """Open-source retention pipeline: simulate, load, transform, gate, sync and report."""
    _State.debug = debug
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if not verbose:
        for name in runtime.QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def _cmd_warehouse(
    show_password: Annotated[bool, typer.Option("--show-password",
                                                help="print the URL whole (for scripts); masked by default")] = False,
) -> int:
    """Start (or reuse) the warehouse and print its URL (the password masked)."""
    url = warehouse.resolve_url(settings())
    print(url if show_password else warehouse.redact(url))
    return 0


def _cmd_env(
    no_check: Annotated[bool, typer.Option(
        "--no-check", help="derive from WAREHOUSE_URL without connecting (container entrypoints)")] = False,
) -> int:
    """Print shell exports for Airflow, dbt and GX (eval them)."""
    cfg = settings()
    if no_check:
        if not cfg.warehouse_url:
            raise warehouse.WarehouseError("--no-check needs WAREHOUSE_URL to be set")
        url = cfg.warehouse_url
        warehouse.parse_url(url)
    else:
        url = warehouse.resolve_url(cfg)
    env = runtime.pipeline_env(url, cfg)
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _cmd_airflow(args: Annotated[list[str] | None, typer.Argument(help="arguments for airflow")] = None) -> int:
    """Run the airflow CLI with the project's environment (every argument passed through)."""
    cfg = settings()
    env = runtime.child_env(warehouse.resolve_url(cfg), cfg)
    runtime.ensure_airflow_db(env)
    return subprocess.run([runtime.airflow_bin(), *(args or [])], env=env).returncode


def _cmd_dbt(args: Annotated[list[str] | None, typer.Argument(help="arguments for dbt")] = None) -> int:
    """Run dbt in dbt_project/ with the project's environment (every argument passed through)."""
    from retention.dbt import dbt_executable

    cfg = settings()
    env = runtime.child_env(warehouse.resolve_url(cfg), cfg)
    return subprocess.run([str(dbt_executable()), *(args or [])], env=env, cwd=cfg.dbt_project_dir).returncode


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="retention", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    app.command("warehouse")(_cmd_warehouse)
    app.command("env")(_cmd_env)
    app.command("airflow", context_settings=_PASS_THROUGH_SETTINGS, add_help_option=False)(_cmd_airflow)
    app.command("dbt", context_settings=_PASS_THROUGH_SETTINGS, add_help_option=False)(_cmd_dbt)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def _with_pass_through(argv: list[str]) -> list[str]:
    """``retention dbt --version``: everything after the pass-through command is the
    tool's, flags included; a ``--`` in front makes click read none of it as ours."""
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] in PASS_THROUGH:
        return [*argv[: first + 1], "--", *argv[first + 1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    args = _with_pass_through(list(sys.argv[1:] if argv is None else argv))
    _State.debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    try:
        result = build_app()(args, prog_name="retention", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as exc:  # a usage error: unknown option, bad value, missing argument
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx else "retention"
        print(f"error: {' '.join(exc.format_message().split())} (see `{where} --help`)", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends in one line, unless --debug
        if _State.debug:
            raise
        print(f"error: {error_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return 2
    return int(result or 0) if isinstance(result, int) or result is None else 0


def error_line(exc: BaseException) -> str:
    """One line for an error: our own errors already say what to do, in words safe to
    show; anything else is named by its type, with secrets and personal data scrubbed."""
    from retention.notifications import scrub

    text = " ".join(str(exc).split()) or type(exc).__name__
    missing_conn = re.search(r"conn_id `([\w.-]+)` isn't defined", text)
    if missing_conn:
        conn_id = missing_conn.group(1)
        return (f"the Airflow connection {conn_id!r} is not defined: set AIRFLOW_CONN_{conn_id.upper()} "
                "(README: Pointing it at your own sources)")
    if isinstance(exc, (warehouse.WarehouseError, OSError)) or type(exc).__module__.startswith("retention."):
        return text
    return f"{type(exc).__name__}: {scrub(text)}"


def iso_date(value: str | None, option: str) -> date | None:
    """``value`` (YYYY-MM-DD) as a date, or a usage error naming ``option``."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def choice(name: str, values) -> type[enum.StrEnum]:
    """A typer choice of ``values`` (its members are the strings themselves)."""
    return enum.StrEnum(name, [(v, v) for v in values])


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the exception to raise for exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
