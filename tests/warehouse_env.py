"""Pointing vee_tasks and its subprocesses at a test database (shared by fixtures)."""

import os

from vee_tasks.config import reset_settings_cache


def use_warehouse(url: str) -> None:
    """Point vee_tasks (and subprocesses such as `airflow dags test`) at this database."""
    os.environ["VEE_WAREHOUSE_URL"] = url
    os.environ["AIRFLOW_CONN_VEE_WAREHOUSE"] = url.replace("postgresql+psycopg2://", "postgresql://")
    reset_settings_cache()
