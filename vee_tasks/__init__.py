"""VEE exception automation: all logic behind the Airflow DAGs, importable without a scheduler."""
