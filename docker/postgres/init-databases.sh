#!/usr/bin/env bash
# First start of the PostgreSQL container (/docker-entrypoint-initdb.d): one database and one
# owner login per component, so that Airflow's metadata, MLflow's registry and the warehouse
# never share tables or credentials. Passwords come from the environment (.env), never from
# this file. The warehouse's group roles are those of sql/migrations/vee/0040_roles.sql; the
# workers' login gets the scoring and training roles and owns nothing.
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?}" "${MLFLOW_DB_PASSWORD:?}" "${VEE_DB_PASSWORD:?}" "${VEE_WORKER_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" \
  -v mlflow_pw="$MLFLOW_DB_PASSWORD" \
  -v vee_pw="$VEE_DB_PASSWORD" \
  -v worker_pw="$VEE_WORKER_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE DATABASE mlflow OWNER mlflow;
-- The warehouse: "vee" owns the schemas and runs `vee db upgrade`; "vee_worker" is what tasks use.
CREATE ROLE vee LOGIN PASSWORD :'vee_pw';
CREATE DATABASE vee OWNER vee;
CREATE ROLE vee_scoring NOLOGIN;
CREATE ROLE vee_training NOLOGIN;
CREATE ROLE vee_reader NOLOGIN;
CREATE ROLE vee_worker LOGIN PASSWORD :'worker_pw' IN ROLE vee_scoring, vee_training;
REVOKE ALL ON DATABASE airflow, mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE vee FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE vee TO vee_scoring, vee_training, vee_reader;
SQL
