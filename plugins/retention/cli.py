"""``retention``: the command line. It calls the same functions as the DAGs.

Sub-commands live next to the code they drive; each such module exposes
``register(subparsers)`` and is listed in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import shlex
import subprocess
import sys

from retention import runtime, warehouse
from retention.config import settings

# Modules that contribute sub-commands: each has register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "retention.demo",
    "retention.quality.cli",
    "retention.load.cli",
    "retention.simulate.stripe_server",
    "retention.extract.stripe",
    "retention.simulate.cli",
    "retention.report.cli",
    "retention.sync.cli",
)


def _cmd_warehouse(args: argparse.Namespace) -> int:
    url = warehouse.resolve_url(settings())
    print(url)
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    cfg = settings()
    if args.no_check:
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


def _cmd_airflow(args: argparse.Namespace) -> int:
    cfg = settings()
    env = runtime.child_env(warehouse.resolve_url(cfg), cfg)
    runtime.ensure_airflow_db(env)
    return subprocess.run([runtime.airflow_bin(), *args.airflow_args], env=env).returncode


def _cmd_dbt(args: argparse.Namespace) -> int:
    cfg = settings()
    env = runtime.child_env(warehouse.resolve_url(cfg), cfg)
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    return subprocess.run([dbt, *args.dbt_args], env=env, cwd=cfg.dbt_project_dir).returncode


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retention-pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retention", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("warehouse", help="start (or reuse) the warehouse and print its URL")
    p.set_defaults(func=_cmd_warehouse)

    p = sub.add_parser("env", help="print shell exports for Airflow, dbt and GX (eval them)")
    p.add_argument(
        "--no-check", action="store_true",
        help="derive from WAREHOUSE_URL without connecting (container entrypoints)",
    )
    p.set_defaults(func=_cmd_env)

    p = sub.add_parser("airflow", help="run the airflow CLI with the project's environment")
    p.add_argument("airflow_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_airflow)

    p = sub.add_parser("dbt", help="run dbt in dbt_project/ with the project's environment")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_dbt)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


# Sub-commands that hand every later argument, flags included, to another tool.
PASS_THROUGH = {"airflow": "airflow_args", "dbt": "dbt_args"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """argparse, except that ``retention dbt --version`` or ``retention airflow --help``
    reach dbt and Airflow untouched (argparse would take their flags as ours)."""
    parser = build_parser()
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] in PASS_THROUGH:
        args = parser.parse_args(argv[: first + 1])
        setattr(args, PASS_THROUGH[argv[first]], argv[first + 1:])
        return args
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for name in runtime.QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends in one line, unless --debug
        if args.debug:
            raise
        print(f"error: {error_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return 2


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
