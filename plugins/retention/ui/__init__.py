"""The pipeline's pages in the Airflow UI (an Airflow 3 plugin, see :mod:`.plugin`)."""
