"""Run Airflow's four components (api-server, scheduler, dag-processor, triggerer) for operators.

`vee ui` / `make ui` call `run_ui()`: migrate the metadata database, make sure the admin
login exists, start the components, print where to log in, and stop them all on Ctrl-C or
SIGTERM. `start_stack()` does the same in the background and returns an `AirflowStack`
(tests, the browser test). The backends are whatever the environment and airflow.cfg say;
in a checkout that is SQLite + LocalExecutor under var/airflow (vee_tasks.airflow_defaults).

Login uses Airflow 3's SimpleAuthManager: the users come from
`[core] simple_auth_manager_users` (default `admin:admin`, i.e. user "admin" with role
ADMIN) and their passwords from a JSON file `{"user": "password"}`. No password lives in the
repository: `VEE_UI_ADMIN_PASSWORD` sets it, else one is generated on first start and kept
in a 0600 file in the Airflow home, whose path is printed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vee_tasks.airflow_defaults import airflow_env
from vee_tasks.config import get_settings

log = logging.getLogger(__name__)

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Stop order: the scheduler first so that nothing new is queued, the API server last so that
# running tasks can still report their state while they shut down.
STOP_ORDER = ("scheduler", "triggerer", "dag-processor", "api-server")
GROUP_EXIT_SECONDS = 10.0  # after SIGKILL, how long stop waits for a group to be gone
ADMIN_USER = "admin"
PASSWORDS_FILE_NAME = "simple_auth_manager_passwords.json"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


class AirflowStartError(RuntimeError):
    """A component could not start (port taken, migration failed, a process exited)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host if host not in ("0.0.0.0", "") else "127.0.0.1", port)) == 0


def stack_env(
    port: int,
    host: str,
    home: Path | None = None,
    dags_folder: Path | None = None,
) -> dict[str, str]:
    """The environment of every component.

    `home=None` keeps the project's Airflow home and whatever backends it is configured
    with. An explicit `home` is an isolated installation (tests): its own SQLite database,
    LocalExecutor, and free ports for the log servers so that it can run beside `vee ui`.
    """
    env = airflow_env()
    if home is not None:
        home = Path(home).resolve()
        env.pop("AIRFLOW_CONFIG", None)
        env["AIRFLOW_HOME"] = str(home)
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
        env.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", None)
    if dags_folder is not None:
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(dags_folder).resolve())
    airflow_home = Path(env["AIRFLOW_HOME"])
    env["AIRFLOW__API__HOST"] = host
    env["AIRFLOW__API__PORT"] = str(port)
    # Task processes of the LocalExecutor report to the execution API of this api-server.
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    env.setdefault("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE_AUTH_MANAGER)
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{ADMIN_USER}:admin")
    env.setdefault(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(airflow_home / PASSWORDS_FILE_NAME)
    )
    # Python output of the components straight to their log files.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ensure_admin_password(
    password_file: Path, username: str = ADMIN_USER, password: str | None = None
) -> Path:
    """Make sure `username` has a password in SimpleAuthManager's file (mode 0600).

    An explicit password replaces the stored one; otherwise an existing one is kept and a
    missing one is generated. Other users' entries are left alone.
    """
    password_file = Path(password_file)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    passwords: dict[str, str] = {}
    if password_file.exists() and password_file.read_text().strip():
        passwords = json.loads(password_file.read_text())
    if password:
        passwords[username] = password
    elif not passwords.get(username):
        passwords[username] = secrets.token_urlsafe(15)
    tmp = password_file.with_name(password_file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(passwords) + "\n")
    os.replace(tmp, password_file)
    os.chmod(password_file, 0o600)
    return password_file


def _airflow_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "airflow", *args]


def migrate(env: dict[str, str], log_file: Path) -> None:
    """`airflow db migrate` (idempotent): creates or upgrades the metadata database."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        done = subprocess.run(
            _airflow_cmd("db", "migrate"), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise AirflowStartError(
            f"airflow db migrate failed (exit {done.returncode}):\n{_tail(log_file)}"
        )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def stop_process_groups(processes: dict, order, timeout: float) -> dict[str, int]:
    """SIGTERM each named process group in `order`, wait up to `timeout` overall, SIGKILL
    what is left, and return every process's exit code."""
    for name in order:
        proc = processes.get(name)
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name in order:
        proc = processes.get(name)
        if proc is None:
            continue
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
        # Children that outlived their parent (LocalExecutor workers, uvicorn workers).
        _signal_group(proc, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: return only when every group is gone, so that a
    # caller (systemd, a test, the next `vee ui` on the same port) never sees a straggler.
    for name in order:
        proc = processes.get(name)
        if proc is not None and not _wait_group_gone(proc.pid, GROUP_EXIT_SECONDS):
            log.warning("%s: processes of group %d still present %.0fs after SIGKILL",
                        name, proc.pid, GROUP_EXIT_SECONDS)
    return {n: p.returncode for n, p in processes.items()}


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """True once no process of group `pgid` exists (signal 0 finds none), False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # the id now belongs to somebody else's group
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@dataclass
class AirflowStack:
    """Handles on the running components, with their logs and the login."""

    url: str
    home: Path
    dags_folder: Path
    log_dir: Path
    password_file: Path
    username: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def password(self) -> str:
        return json.loads(self.password_file.read_text())[self.username]

    def exited(self) -> dict[str, int]:
        """Components that are no longer running, with their exit codes."""
        return {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}

    def log_tail(self, name: str, lines: int = 25) -> str:
        return _tail(self.log_dir / f"{name}.log", lines)

    def _check_alive(self) -> None:
        dead = self.exited()
        if dead:
            name, code = next(iter(dead.items()))
            raise AirflowStartError(
                f"airflow {name} exited with code {code}; last lines of its log "
                f"{self.log_dir / (name + '.log')}:\n{self.log_tail(name)}"
            )

    def wait_for_login_page(self, timeout: float = 180.0) -> float:
        """Seconds from start until the login page answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                status, _ = _get(self.url + "auth/login")
                if status == 200:
                    return time.monotonic() - self.started_at
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        raise AirflowStartError(f"the login page at {self.url}auth/login did not answer in {timeout:.0f}s")

    def health(self) -> dict:
        status, body = _get(self.url + "api/v2/monitor/health")
        return json.loads(body) if status == 200 else {}

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds from start until the API reports database, scheduler, dag processor and
        triggerer healthy (each heartbeats into the metadata database)."""
        deadline = time.monotonic() + timeout
        wanted = ("metadatabase", "scheduler", "dag_processor", "triggerer")
        last: dict = {}
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                last = self.health()
            except (OSError, urllib.error.URLError, ValueError):
                last = {}
            if last and all((last.get(k) or {}).get("status") == "healthy" for k in wanted):
                return time.monotonic() - self.started_at
            time.sleep(1.0)
        raise AirflowStartError(f"components not healthy after {timeout:.0f}s: {last}")

    def stop(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM each component's process group (its task and worker children too), wait,
        then SIGKILL whatever is left. Returns the exit codes."""
        return stop_process_groups(self.processes, STOP_ORDER, timeout)

    def __enter__(self) -> "AirflowStack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the starting process dies, even by SIGKILL,
    so that a killed `vee ui` or test run leaves no Airflow behind (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_stack(
    port: int = 8080,
    host: str | None = None,
    home: Path | None = None,
    dags_folder: Path | None = None,
    admin_password: str | None = None,
    components: tuple[str, ...] = COMPONENTS,
) -> AirflowStack:
    """Migrate, set up the admin login, and start the components in the background.

    Each component runs in its own process group with its output in `<home>/logs/vee-ui/`.
    The caller waits with `wait_for_login_page()` / `wait_healthy()` and must `stop()`.
    """
    settings = get_settings()
    host = host or settings.ui_host
    if port_in_use(port, host):
        raise AirflowStartError(f"port {port} is already in use: stop what runs there or pick --port")
    env = stack_env(port, host, home=home, dags_folder=dags_folder)
    airflow_home = Path(env["AIRFLOW_HOME"])
    log_dir = airflow_home / "logs" / "vee-ui"
    log_dir.mkdir(parents=True, exist_ok=True)
    password_file = ensure_admin_password(
        Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]),
        password=admin_password or settings.ui_admin_password,
    )
    started_at = time.monotonic()
    migrate(env, log_dir / "migrate.log")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    stack = AirflowStack(
        url=f"http://{shown_host}:{port}/",
        home=airflow_home,
        dags_folder=Path(env["AIRFLOW__CORE__DAGS_FOLDER"]),
        log_dir=log_dir,
        password_file=password_file,
        username=ADMIN_USER,
        started_at=started_at,
    )
    try:
        for name in components:
            args = ["api-server", "--host", host, "--port", str(port)] if name == "api-server" else [name]
            with open(log_dir / f"{name}.log", "ab") as out:
                stack.processes[name] = subprocess.Popen(
                    _airflow_cmd(*args),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
    except BaseException:
        stack.stop(timeout=10)
        raise
    return stack


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop()


def run_ui(port: int = 8080) -> int:
    """Foreground: start everything, print how to log in, stop all on Ctrl-C / SIGTERM."""
    settings = get_settings()
    print(f"starting Airflow (api-server, scheduler, dag-processor, triggerer) on port {port} ...")
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    stack: AirflowStack | None = None
    try:
        try:
            stack = start_stack(port=port, host=settings.ui_host)
            login_s = stack.wait_for_login_page()
        except AirflowStartError as exc:
            print(f"vee: error: {exc}", file=sys.stderr)
            return 1
        how = (
            "the password set in VEE_UI_ADMIN_PASSWORD"
            if settings.ui_admin_password
            else f'the "{stack.username}" entry of {stack.password_file} (mode 0600)'
        )
        print(
            f"\nAirflow UI ready after {login_s:.1f}s: {stack.url}\n"
            f"  log in as:  {stack.username}\n"
            f"  password:   {how}\n"
            f"  DAGs from:  {stack.dags_folder}\n"
            f"  logs:       {stack.log_dir}/<component>.log\n"
            "Ctrl-C stops all components.",
            flush=True,
        )
        try:
            healthy_s = stack.wait_healthy()
            print(f"all components healthy after {healthy_s:.1f}s", flush=True)
            while True:
                stack._check_alive()
                time.sleep(1.0)
        except AirflowStartError as exc:
            print(f"vee: error: {exc}", file=sys.stderr)
            return 1
    except (KeyboardInterrupt, _Stop):
        print("\nstopping Airflow components ...", flush=True)
        return 0
    finally:
        if stack is not None:
            # A second Ctrl-C must not abandon components half-stopped.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            codes = stack.stop()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print("stopped: " + ", ".join(f"{n} (exit {c})" for n, c in codes.items()), flush=True)
        signal.signal(signal.SIGTERM, previous)


def set_admin_password() -> Path:
    """Write VEE_UI_ADMIN_PASSWORD for the admin user into the passwords file that Airflow's
    configuration names (`airflow-init` in docker-compose.yml runs this)."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    password = get_settings().ui_admin_password
    if not password:
        raise AirflowStartError("VEE_UI_ADMIN_PASSWORD is not set")
    return ensure_admin_password(Path(SimpleAuthManager.get_generated_password_file()), password=password)


def main(argv: list[str] | None = None) -> int:
    """`python -m vee_tasks.airflow_runtime [PORT]` runs the UI like `vee ui`;
    `python -m vee_tasks.airflow_runtime set-admin-password` only stores the password."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["set-admin-password"]:
        try:
            path = set_admin_password()
        except AirflowStartError as exc:
            print(f"vee: error: {exc}", file=sys.stderr)
            return 1
        print(f"admin password stored in {path} (mode 0600)")
        return 0
    return run_ui(int(args[0]) if args else 8080)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
