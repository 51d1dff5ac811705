"""Fixtures for the browser tests: Debian's Chromium + ChromeDriver, and a running Airflow.

Airflow runs with its own home in a temp dir (SQLite, LocalExecutor) on a free port, over a
DAG folder holding the project's DAG files (symlinked) plus a two-task smoke DAG, so that
one run really executes end to end without touching a warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import urllib.request
from pathlib import Path

import pytest

from vee_tasks.airflow_runtime import AirflowStack, free_port, start_stack
from vee_tasks.config import DAGS_DIR, PROJECT_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS_DIR = PROJECT_DIR / "var" / "test-artifacts" / "ui"
SMOKE_DAG_ID = "vee_ui_smoke"
# The machine doc's flags: no sandbox as root, and no background traffic to Google's hosts,
# which this machine's closed network refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)

SMOKE_DAG = textwrap.dedent(
    f'''
    """Two trivial tasks: proves the scheduler, executor and execution API run a task."""
    import pendulum
    from airflow.sdk import dag, task


    @dag(dag_id="{SMOKE_DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
    def vee_ui_smoke():
        @task
        def count_meters() -> int:
            return 3

        @task
        def summarise(meters: int) -> str:
            return f"{{meters}} meters"

        summarise(count_meters())


    vee_ui_smoke()
    '''
)


def _browser_binaries_present() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


@pytest.fixture(scope="session")
def chromium_binaries() -> tuple[str, str]:
    """Debian's chromium and chromium-driver; installed here as root when missing."""
    if not _browser_binaries_present() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
            env=env,
            capture_output=True,
            timeout=900,
        )
    if not _browser_binaries_present():
        pytest.skip(
            f"{CHROMIUM} and {CHROMEDRIVER} are missing and could not be installed "
            "(needs root and Debian's packages chromium, chromium-driver)"
        )
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS_DIR.glob("*.png"):
        old.unlink()
    return ARTIFACTS_DIR


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory) -> AirflowStack:
    root = tmp_path_factory.mktemp("airflow-ui")
    dags = root / "dags"
    dags.mkdir()
    for path in sorted(DAGS_DIR.glob("*.py")):
        (dags / path.name).symlink_to(path)
    (dags / f"{SMOKE_DAG_ID}.py").write_text(SMOKE_DAG)
    stack = start_stack(port=free_port(), host="127.0.0.1", home=root / "home", dags_folder=dags)
    try:
        stack.login_page_seconds = stack.wait_for_login_page(timeout=300)
        stack.healthy_seconds = stack.wait_healthy(timeout=300)
        print(
            f"\nAirflow UI: login page after {stack.login_page_seconds:.1f}s, "
            f"all components healthy after {stack.healthy_seconds:.1f}s"
        )
        yield stack
    finally:
        codes = stack.stop()
        print(f"Airflow components stopped: {codes}")


@pytest.fixture(scope="module")
def browser(chromium_binaries):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = chromium_binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="vee-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Api:
    """The REST API as the admin user (JWT from SimpleAuthManager's /auth/token)."""

    def __init__(self, stack: AirflowStack):
        self.base = stack.url
        body = {"username": stack.username, "password": stack.password}
        self.token = self.call("POST", "auth/token", body, auth=False)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}


@pytest.fixture(scope="module")
def api(airflow_ui) -> Api:
    return Api(airflow_ui)
