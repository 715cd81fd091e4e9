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
ENV RETENTION_HOME=/opt/retention
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/retention/docker/entrypoint.sh"]
CMD []
