# The project's one image: Airflow's components, the Celery workers, the MLflow server and the
# `vee` CLI, all from the pinned lock file, so the containers run exactly the tested stack.
#   docker build -t vee-tasks .        (docker compose builds it: see docs/operations.md)
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    VEE_DATA_DIR=/opt/airflow/vee-data \
    # vee_tasks finds sql/, expectations/ and dags/ beside its package: import it from the
    # copied tree (the installed copy only provides the `vee` command and the metadata).
    PYTHONPATH=/opt/vee

# Airflow's conventional uid, group 0 (works with arbitrary-uid platforms too).
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow

WORKDIR /opt/vee
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY vee_tasks ./vee_tasks
RUN pip install --no-deps . && rm -rf build
COPY dags ./dags
COPY sql ./sql
COPY expectations ./expectations

# Directories that compose mounts named volumes on: created here so the volumes start
# owned by the airflow user.
RUN mkdir -p /opt/airflow/logs /opt/airflow/auth /opt/airflow/vee-data /mlflow/artifacts \
    && chown -R airflow:0 /opt/airflow /mlflow \
    && chmod 0700 /opt/airflow/auth

USER airflow
WORKDIR /opt/airflow
ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/vee/dags
CMD ["airflow", "version"]
