"""Airflow 3 plugin: the retention report, the dbt docs and the Great Expectations Data
Docs, one click from the Airflow UI.

A FastAPI app mounted by the API server under ``/retention`` serves the three sites from
the files the pipeline writes (``reports/``, ``dbt_project/target/``,
``expectations/uncommitted/data_docs/local_site/``); three external views put them in the
UI's navigation. Every route requires an Airflow login (the same JWT the UI uses, from
its cookie or a Bearer header): plugin apps are not protected by Airflow on their own.

Registered through the package's ``airflow.plugins`` entry point (pyproject.toml), so it
loads wherever the package is installed, without files in the plugins folder.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations of the route
# functions defined inside create_app, whose types are imported there.

from pathlib import Path

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/retention"

# (route, title, the folder it serves relative to RETENTION_HOME, how to build it); the
# report's folder is RETENTION_REPORTS_DIR.
SITES: dict[str, tuple[str, str, str]] = {
    "report": ("Retention report", "reports", "retention report"),
    "dbt-docs": ("dbt docs", "dbt_project/target", "retention dbt docs generate"),
    "data-docs": ("Data quality docs", "expectations/uncommitted/data_docs/local_site", "retention gate --stage raw"),
}
def site_root(site: str) -> Path:
    from retention.config import settings

    cfg = settings()
    return cfg.report_path.parent if site == "report" else cfg.home / SITES[site][1]


def index_file(site: str) -> str:
    from retention.config import settings

    return settings().report_path.name if site == "report" else "index.html"


async def require_login(request) -> None:
    """The Airflow login, as the UI's own routes check it: a Bearer JWT, else the UI's
    cookie. Airflow's API modules are imported on the first request, not when every
    Airflow process (task runners included) loads the plugin."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    await resolve_user_from_token(token)


def create_app():
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse

    async def login(request: Request) -> None:
        await require_login(request)

    app = FastAPI(title="Retention pipeline sites", dependencies=[Depends(login)])

    def serve(site: str, path: str):
        root = site_root(site).resolve()
        target = (root / (path or index_file(site))).resolve()
        if not target.is_relative_to(root):
            raise HTTPException(status_code=404)
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            if path and path != index_file(site):
                raise HTTPException(status_code=404)
            title, _, hint = SITES[site]
            return HTMLResponse(
                f"<h2>{title}: not built yet</h2><p>Run <code>{hint}</code> (or <code>make demo</code>), "
                "then reload this page.</p>",
                status_code=404,
            )
        return FileResponse(target)

    def routes(site: str):
        def index():
            return serve(site, "")

        def files(path: str):
            return serve(site, path)

        return index, files

    for site in SITES:
        index, files = routes(site)
        app.add_api_route(f"/{site}/", index, methods=["GET"], name=site)
        app.add_api_route(f"/{site}/{{path:path}}", files, methods=["GET"], name=f"{site}-files")
    return app


class RetentionPlugin(AirflowPlugin):
    name = "retention"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Retention pipeline sites"}]
    external_views = [
        {"name": title, "href": f"{URL_PREFIX}/{site}/", "destination": "nav", "category": "browse",
         "url_route": f"retention-{site}"}
        for site, (title, _, _) in SITES.items()
    ]
