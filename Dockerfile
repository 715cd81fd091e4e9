# The pipeline image: Airflow 3.3 + the project, installed from the same lock file as
# `make venv`, so containers and laptops run identical versions.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
USER airflow

WORKDIR /opt/retention
COPY --chown=airflow:root requirements/requirements.lock requirements/requirements.lock
# uv pip sync installs exactly the pinned set; no resolver can downgrade Airflow.
RUN pip install --no-cache-dir uv==0.13.9 \
 && uv pip sync --compile-bytecode --python "$(command -v python)" requirements/requirements.lock

COPY --chown=airflow:root pyproject.toml README.md ./
COPY --chown=airflow:root plugins/ plugins/
RUN uv pip install --python "$(command -v python)" --no-deps -e .

COPY --chown=airflow:root docker/entrypoint.sh /opt/retention/docker/entrypoint.sh
# The pipeline itself, so the image runs alone (compose, Kubernetes); docker-compose.dev.yml
# bind-mounts these over it for development.
COPY --chown=airflow:root dags/ dags/
COPY --chown=airflow:root dbt_project/ dbt_project/
COPY --chown=airflow:root expectations/ expectations/
# Containers run as any AIRFLOW_UID with group 0 (the official image's convention): dbt
# writes target/ and logs/, GX writes expectations/, the loader reads data/.
RUN mkdir -p /opt/retention/data \
 && chmod -R g+rwX /opt/retention/dbt_project /opt/retention/expectations /opt/retention/data
ENV RETENTION_HOME=/opt/retention
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/retention/docker/entrypoint.sh"]
CMD []
