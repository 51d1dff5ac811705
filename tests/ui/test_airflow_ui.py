"""The Airflow UI as an operator sees it, in a real headless Chromium.

Starts Airflow's four components with `vee_tasks.airflow_runtime.start_stack`, logs in
through the login form with the generated admin password, checks that the DAG list shows
the project's DAGs and that run graphs render, and saves screenshots under
var/test-artifacts/ui/.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from vee_tasks.config import NIGHTLY_DAG_ID, WEEKLY_DAG_ID

pytestmark = pytest.mark.slow

WAIT = 60
SMOKE_DAG_ID = "vee_ui_smoke"  # the two-task DAG that conftest adds to the folder


def _wait(driver, condition, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _by(kind: str):
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _login(driver, stack, password: str) -> None:
    from selenium.webdriver.support import expected_conditions as EC

    driver.delete_all_cookies()
    driver.get(stack.url + "auth/login")
    user = _wait(driver, EC.element_to_be_clickable((_by("NAME"), "username")))
    user.clear()
    user.send_keys(stack.username)
    field = driver.find_element(_by("NAME"), "password")
    field.clear()
    field.send_keys(password)
    driver.find_element(_by("CSS_SELECTOR"), "button[type=submit]").click()


def _logged_in(driver, stack) -> None:
    if not any(c["name"] == "_token" for c in driver.get_cookies()):
        _login(driver, stack, stack.password)
        _wait(driver, lambda d: "/auth/login" not in d.current_url)


def _wait_run_state(api, dag_id: str, run_id: str, states: set[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = api.call("GET", f"api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state in states:
            return state
        time.sleep(1)
    raise AssertionError(f"{dag_id} run {run_id} still {state} after {timeout}s")


def _open_graph(driver, stack, dag_id: str, run_id: str) -> list:
    from selenium.webdriver.support import expected_conditions as EC

    driver.get(f"{stack.url}dags/{dag_id}/runs/{run_id}")
    graph_button = _wait(
        driver, EC.element_to_be_clickable((_by("CSS_SELECTOR"), "button[aria-label^='Show Graph']"))
    )
    graph_button.click()
    _wait(driver, EC.presence_of_element_located((_by("CSS_SELECTOR"), ".react-flow__node")))
    time.sleep(1.5)  # let the layout settle before the screenshot
    return driver.find_elements(_by("CSS_SELECTOR"), ".react-flow__node")


def test_api_refuses_requests_without_login(airflow_ui):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(airflow_ui.url + "api/v2/dags", timeout=30)
    assert err.value.code == 401


def test_password_file_is_private(airflow_ui):
    assert airflow_ui.password_file.stat().st_mode & 0o777 == 0o600
    assert len(airflow_ui.password) >= 16


def test_login_form_rejects_a_wrong_password_then_accepts_the_generated_one(
    browser, airflow_ui, artifacts_dir
):
    from selenium.webdriver.support import expected_conditions as EC

    browser.get(airflow_ui.url)
    _wait(browser, lambda d: "/auth/login" in d.current_url)
    _wait(browser, EC.presence_of_element_located((_by("NAME"), "password")))
    browser.save_screenshot(str(artifacts_dir / "01_login_page.png"))

    _login(browser, airflow_ui, "not-the-password")
    _wait(
        browser,
        EC.presence_of_element_located(
            (_by("XPATH"), "//*[contains(translate(., 'INVALD', 'invald'), 'invalid')]")
        ),
    )
    assert "/auth/login" in browser.current_url
    assert not any(c["name"] == "_token" for c in browser.get_cookies())
    browser.save_screenshot(str(artifacts_dir / "02_login_rejected.png"))

    _login(browser, airflow_ui, airflow_ui.password)
    _wait(browser, lambda d: "/auth/login" not in d.current_url)
    assert any(c["name"] == "_token" for c in browser.get_cookies())


def test_dag_list_shows_the_project_dags(browser, airflow_ui, api, artifacts_dir):
    from selenium.common.exceptions import TimeoutException

    _logged_in(browser, airflow_ui)
    # The dag-processor parses the folder shortly after start; reload until both appear.
    deadline = time.monotonic() + 180
    wanted = (NIGHTLY_DAG_ID, WEEKLY_DAG_ID)
    while True:
        browser.get(airflow_ui.url + "dags")
        try:
            _wait(
                browser,
                lambda d: all(
                    d.find_elements(_by("XPATH"), f"//a[normalize-space()='{dag_id}']")
                    for dag_id in wanted
                ),
                timeout=10,
            )
            break
        except TimeoutException:
            if time.monotonic() > deadline:
                browser.save_screenshot(str(artifacts_dir / "03_dag_list_FAILED.png"))
                raise
    time.sleep(1)
    browser.save_screenshot(str(artifacts_dir / "03_dag_list.png"))
    shown = {a.text.strip() for a in browser.find_elements(_by("CSS_SELECTOR"), "a[href*='/dags/']")}
    assert set(wanted) <= shown, shown
    errors = api.call("GET", "api/v2/importErrors")
    assert errors["total_entries"] == 0, [e["filename"] for e in errors["import_errors"]]


def test_home_page_shows_every_component_healthy(browser, airflow_ui, artifacts_dir):
    """The dashboard's health panel: what an operator checks first."""
    _logged_in(browser, airflow_ui)
    browser.get(airflow_ui.url)
    for label in ("MetaDatabase", "Scheduler", "Triggerer", "Dag Processor"):
        _wait(browser, lambda d, label=label: d.find_elements(_by("XPATH"), f"//*[text()='{label}']"))
    time.sleep(1.5)
    browser.save_screenshot(str(artifacts_dir / "03b_home_health.png"))
    assert "Dag Import Error" not in browser.page_source


def test_a_triggered_run_executes_and_its_graph_renders(browser, airflow_ui, api, artifacts_dir):
    """The smoke DAG really runs (scheduler, LocalExecutor, execution API on SQLite)."""
    _logged_in(browser, airflow_ui)
    deadline = time.monotonic() + 120
    while True:
        try:
            api.call("GET", f"api/v2/dags/{SMOKE_DAG_ID}")
            break
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    api.call("PATCH", f"api/v2/dags/{SMOKE_DAG_ID}", {"is_paused": False})
    run = api.call("POST", f"api/v2/dags/{SMOKE_DAG_ID}/dagRuns", {"logical_date": None})
    assert _wait_run_state(api, SMOKE_DAG_ID, run["dag_run_id"], {"success", "failed"}) == "success"

    nodes = _open_graph(browser, airflow_ui, SMOKE_DAG_ID, run["dag_run_id"])
    browser.save_screenshot(str(artifacts_dir / "04_smoke_run_graph.png"))
    by_id = {n.get_attribute("data-id"): n.text for n in nodes}
    assert set(by_id) == {"count_meters", "summarise"}
    assert all("success" in text for text in by_id.values()), by_id


@pytest.mark.parametrize("dag_id", [NIGHTLY_DAG_ID, WEEKLY_DAG_ID])
def test_project_dag_run_graph_renders_every_task(browser, airflow_ui, api, artifacts_dir, dag_id):
    """A run of a project DAG, triggered while the DAG is paused: it stays queued (nothing
    touches a warehouse) and its graph shows every task of the DAG."""
    _logged_in(browser, airflow_ui)
    assert api.call("GET", f"api/v2/dags/{dag_id}")["is_paused"] is True
    tasks = {t["task_id"] for t in api.call("GET", f"api/v2/dags/{dag_id}/tasks")["tasks"]}
    run = api.call("POST", f"api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    assert run["state"] == "queued"

    nodes = _open_graph(browser, airflow_ui, dag_id, run["dag_run_id"])
    browser.save_screenshot(str(artifacts_dir / f"05_{dag_id}_run_graph.png"))
    shown = {n.get_attribute("data-id") for n in nodes}
    # Task groups render as one node (collapsed); every task is either shown or inside one.
    covered = {t for t in tasks if t in shown or any(t.startswith(g + ".") for g in shown)}
    assert covered == tasks, (tasks - covered, shown)
