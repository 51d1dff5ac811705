"""vee_tasks.airflow_runtime: the admin password file, the components' environment, and
`vee ui` as a process (starts, prints how to log in, stops everything on SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vee_tasks.airflow_runtime import (
    AirflowStartError,
    ensure_admin_password,
    free_port,
    stack_env,
    start_stack,
)


def test_a_missing_admin_password_is_generated_private_and_then_kept(tmp_path):
    path = ensure_admin_password(tmp_path / "auth" / "passwords.json")
    assert path.stat().st_mode & 0o777 == 0o600
    first = json.loads(path.read_text())["admin"]
    assert len(first) >= 16
    ensure_admin_password(path)
    assert json.loads(path.read_text())["admin"] == first
    other = ensure_admin_password(tmp_path / "other.json")
    assert json.loads(other.read_text())["admin"] != first


def test_an_explicit_password_replaces_only_the_admin_entry(tmp_path):
    path = tmp_path / "passwords.json"
    path.write_text(json.dumps({"admin": "old", "ana": "hers"}))
    path.chmod(0o644)
    ensure_admin_password(path, password="chosen-by-operator")
    assert json.loads(path.read_text()) == {"admin": "chosen-by-operator", "ana": "hers"}
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_isolated_home_gets_its_own_sqlite_ports_and_password_file(tmp_path):
    env = stack_env(18080, "127.0.0.1", home=tmp_path / "home", dags_folder=tmp_path / "dags")
    home = (tmp_path / "home").resolve()
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home}/airflow.db"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str((tmp_path / "dags").resolve())
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(str(home))
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] != "8793"


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(AirflowStartError, match=f"port {port} is already in use"):
            start_stack(port=port, host="127.0.0.1", home=tmp_path / "home")
    assert not (tmp_path / "home" / "airflow.db").exists()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.slow
def test_vee_ui_prints_the_login_and_stops_every_component_on_sigterm(tmp_path):
    """The real command: its own Airflow home, SIGTERM as from systemd or `kill`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), VEE_DATA_DIR=str(tmp_path / "data"))
    env.pop("VEE_UI_ADMIN_PASSWORD", None)
    vee = Path(sys.executable).with_name("vee")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(vee), "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Airflow UI ready") or time.monotonic() - started > 400:
                break
        ready_at = time.monotonic() - started
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in out, out
        password_file = tmp_path / "airflow" / "simple_auth_manager_passwords.json"
        for _ in range(4):
            lines.append(proc.stdout.readline())
        out = "".join(lines)
        assert "log in as:  admin" in out and str(password_file) in out, out
        assert json.loads(password_file.read_text())["admin"] not in out  # never printed
        print(f"\n`vee ui` login page answered {ready_at:.1f}s after the command started")

        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        groups = {os.getpgid(int(pid)) for pid in children}
        assert len(groups) == 4, groups

        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, rest
        assert "stopped: " in rest
        assert not [g for g in groups if _group_alive(g)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

