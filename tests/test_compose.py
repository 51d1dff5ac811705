"""docker-compose.yml, Dockerfile and .env.example, checked statically.

No Docker engine runs on the development and CI machines, so the stack is checked as files:
the services and their wiring, that every local path it names exists, and that no secret
has a default. When a compose client is installed (`docker compose` or `docker-compose`),
its own `config` validation runs too; it needs no engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from vee_tasks.config import PROJECT_DIR

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
DOCKERFILE = PROJECT_DIR / "Dockerfile"
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
INIT_SCRIPT = PROJECT_DIR / "docker" / "postgres" / "init-databases.sh"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
LONG_RUNNING = {"postgres", "redis", "mlflow", *AIRFLOW_SERVICES}
REQUIRED_VAR = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}$")
REQUIRED_ANYWHERE = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]*\}")
URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN", re.I)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def test_every_service_of_the_stack_is_defined(services):
    assert {"postgres", "redis", "mlflow", "airflow-init", *AIRFLOW_SERVICES} <= set(services)


def test_python_services_run_the_image_built_from_this_checkout(services):
    for name in ("mlflow", "airflow-init", *AIRFLOW_SERVICES):
        build = services[name]["build"]
        context = (PROJECT_DIR / build["context"]).resolve()
        assert context == PROJECT_DIR, name
        assert (context / build["dockerfile"]).is_file(), name
    for name in ("postgres", "redis"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} image must be pinned"


def test_dockerfile_installs_the_lock_then_the_project(services):
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    lock_at = text.index("pip install -r requirements.lock")
    assert lock_at < text.index("pip install --no-deps .")
    for source in ("dags", "sql", "expectations", "vee_tasks", "requirements.lock", "pyproject.toml"):
        assert re.search(rf"^COPY {re.escape(source)}\b", text, re.M), source
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (PROJECT_DIR / source).exists(), f"Dockerfile copies missing {source}"
    assert re.search(r"^USER (?!root)\S+", text, re.M), "containers must not run as root"
    ignored = (PROJECT_DIR / ".dockerignore").read_text().split()
    assert {".venv", "var", ".env", ".git"} <= set(ignored)


def test_components_run_their_airflow_command(services):
    for name, command in AIRFLOW_SERVICES.items():
        assert f"airflow {command}" in _command(services[name]), name
    init = _command(services["airflow-init"])
    for step in ("airflow db migrate", "vee_tasks.airflow_runtime set-admin-password", "vee db upgrade"):
        assert step in init
    assert init.index("airflow db migrate") < init.index("vee db upgrade")
    assert "set -euo pipefail" in init


def test_long_running_services_have_health_checks(services):
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "healthcheck" not in services["airflow-init"]
    assert services["airflow-init"].get("restart") == "no"


def test_start_order_waits_for_healthy_dependencies(services):
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    worker = services["airflow-worker"]["depends_on"]
    assert worker["airflow-apiserver"]["condition"] == "service_healthy"
    assert worker["mlflow"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_celery_executor_with_redis_broker_and_postgres_metadata(services):
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
        # Every component must share the secrets that tokens and connections depend on.
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
            assert REQUIRED_VAR.match(env[key]), (name, key)
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"


def test_workers_reach_the_warehouse_and_the_registry(services):
    env = _env(services["airflow-worker"])
    assert re.fullmatch(r"postgresql://vee_worker:\$\{[^}]+\}@postgres:5432/vee", env["AIRFLOW_CONN_VEE_WAREHOUSE"])
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # The migrator (airflow-init) uses the warehouse owner, not the workers' login.
    assert "//vee:" in _env(services["airflow-init"])["AIRFLOW_CONN_VEE_WAREHOUSE"]


def test_mlflow_server_uses_postgres_and_an_artifact_volume(services, compose):
    mlflow = services["mlflow"]
    command = mlflow["command"]
    store = command[command.index("--backend-store-uri") + 1]
    assert store.startswith("postgresql+psycopg2://mlflow:") and store.endswith("@postgres:5432/mlflow")
    destination = command[command.index("--artifacts-destination") + 1]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in mlflow["volumes"]}
    assert mounts[destination] in compose["volumes"]
    assert "--serve-artifacts" in command


def test_login_is_required_and_the_admin_password_comes_from_the_environment(services):
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
        assert env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false").lower() == "false"
    init_env = _env(services["airflow-init"])
    assert REQUIRED_VAR.match(init_env["VEE_UI_ADMIN_PASSWORD"])
    api_mounts = [m.split(":")[0:2] for m in services["airflow-apiserver"]["volumes"]]
    init_mounts = [m.split(":")[0:2] for m in services["airflow-init"]["volumes"]]
    password_dir = str(Path(init_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).parent)
    assert [v for v, p in api_mounts if p == password_dir] == [v for v, p in init_mounts if p == password_dir] != []


def test_no_secret_has_a_plaintext_value_or_default(compose):
    for text in _strings(compose):
        for match in URL_PASSWORD.finditer(text):
            assert REQUIRED_VAR.match(match["password"]), f"URL with a literal password: {text}"
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if SECRET_KEY.search(key) and value not in ("", None):
                assert REQUIRED_VAR.match(str(value)) or str(value).endswith("passwords.json"), (
                    f"{name}: {key} must be a required ${{VAR:?message}}, got {value!r}"
                )
    raw = COMPOSE_FILE.read_text()
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|SECRET|FERNET)[A-Z_]*:?-", raw), "a secret has a default"


def test_every_local_path_exists(services):
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (PROJECT_DIR / source).exists(), f"{name} mounts missing {source}"
        for env_file in service.get("env_file", []) or []:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            required = isinstance(env_file, str) or env_file.get("required", True)
            assert not required or (PROJECT_DIR / path).exists(), f"{name} needs {path}"
    assert INIT_SCRIPT.is_file() and os.access(INIT_SCRIPT, os.X_OK)


def test_init_script_creates_separate_databases_without_literal_passwords():
    text = INIT_SCRIPT.read_text()
    for database in ("airflow", "mlflow", "vee"):
        assert re.search(rf"CREATE DATABASE {database} OWNER {database};", text), database
    assert "set -euo pipefail" in text and "ON_ERROR_STOP=1" in text
    assert not re.search(r"PASSWORD\s+'", text), "passwords must come from psql variables"


def test_env_example_names_every_required_variable_without_values():
    required = set(m["name"] for m in REQUIRED_ANYWHERE.finditer(COMPOSE_FILE.read_text()))
    assigned = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assigned[key.strip()] = value.strip()
    assert required <= set(assigned), required - set(assigned)
    assert all(value == "" for value in assigned.values()), "no real secrets in .env.example"
    ignored = (PROJECT_DIR / ".gitignore").read_text().split()
    assert ".env" in ignored


def test_no_setting_of_vee_env_is_overridden_by_the_compose_environment(compose, services):
    """Compose gives a service's `environment:` precedence over its `env_file:`: a VEE_
    setting the operator puts in vee.env (as vee.env.example tells them) must not also be set
    there, or it is silently replaced (an outside review found VEE_ALERT_EMAIL emptied so)."""
    in_vee_env = set(re.findall(r"^#?\s*(VEE_[A-Z0-9_]+)=",
                                (PROJECT_DIR / "vee.env.example").read_text(), re.M))
    assert {"VEE_ALERT_EMAIL", "VEE_ALERT_WEBHOOK_URL", "VEE_MAX_QUARANTINE_SHARE"} <= in_vee_env
    common = compose["x-airflow-common"]
    assert any("vee.env" in str(entry) for entry in common["env_file"])
    for name, service in services.items():
        if "env_file" in service:
            assert in_vee_env.isdisjoint(_env(service)), (name, in_vee_env & set(_env(service)))
    # .env's own optional settings and vee.env's are two separate lists
    in_env = set(re.findall(r"^#?\s*(VEE_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert in_env.isdisjoint(in_vee_env), in_env & in_vee_env


def _compose_client() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_client_validates_the_file(tmp_path):
    client = _compose_client()
    if client is None:
        pytest.skip("no compose client (docker compose / docker-compose) on this machine")
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    names = set(m["name"] for m in REQUIRED_ANYWHERE.finditer(COMPOSE_FILE.read_text()))
    base = {k: v for k, v in os.environ.items() if k not in names}
    args = [*client, "--env-file", str(empty_env), "-f", str(COMPOSE_FILE), "config"]

    missing = subprocess.run([*args, "-q"], env=base, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0
    assert "in .env" in missing.stderr  # the required variable's message

    filled = dict(base, **{name: "dummy-value" for name in names})
    done = subprocess.run(args, env=filled, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) >= LONG_RUNNING
    worker_env = resolved["services"]["airflow-worker"]["environment"]
    assert worker_env["AIRFLOW_CONN_VEE_WAREHOUSE"] == "postgresql://vee_worker:dummy-value@postgres:5432/vee"
