"""Airflow settings this project needs, applied as defaults at interpreter start.

The project's virtual environment carries a `.pth` file (written by `make setup`) that
imports this module, so that a bare `airflow dags test vee_nightly_scoring 2026-03-01` finds
the project's DAGs, its metadata database and the utility's time zone. Every value is a
default: a variable already set in the environment wins. Keep this module cheap: it runs in
every Python process of the environment.
"""

import os
from pathlib import Path

_PROJECT = Path(__file__).resolve().parent.parent


def apply() -> None:
    if not (_PROJECT / "pyproject.toml").exists():
        # An installed package (the Docker image): its deployment sets Airflow's variables,
        # and there is no checkout whose var/ and dags/ these defaults would point at.
        return
    # The same defaults as vee_tasks.config for a checkout (var/, America/Toronto), read
    # here without importing it: this runs in every Python process of the environment.
    data_dir = Path(os.environ.get("VEE_DATA_DIR") or _PROJECT / "var")
    own_home = "AIRFLOW_HOME" not in os.environ
    home = os.environ.setdefault("AIRFLOW_HOME", str(data_dir / "airflow"))
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(_PROJECT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": os.environ.get("VEE_TIMEZONE") or "America/Toronto",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        "AIRFLOW__WEBSERVER__WARN_DEPLOYMENT_EXPOSURE": "False",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"vee_tasks\..*",
    }
    if own_home:
        # Our own Airflow home: SQLite metadata and the LocalExecutor unless told otherwise.
        # A user-provided AIRFLOW_HOME keeps its airflow.cfg's database and executor; the
        # other defaults above still win over the file (Airflow writes every option into a
        # new airflow.cfg, so it cannot tell our defaults from an operator's choice): change
        # them with AIRFLOW__SECTION__KEY variables (docs/operations.md, "Backends").
        defaults["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
        defaults["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    Path(home).mkdir(parents=True, exist_ok=True)


def airflow_env() -> dict[str, str]:
    """A copy of the environment with these defaults applied: what Airflow's processes get."""
    apply()
    return dict(os.environ)


apply()
