"""Alerting against real receivers on localhost: an HTTP webhook and an SMTP server."""

from __future__ import annotations

import email
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pendulum
import pytest

from vee_tasks import alerting
from vee_tasks.config import get_settings

SECRET = "hunter2-do-not-leak"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookReceiver:
    """A real HTTP server in a thread that records every POST (and can answer an error)."""

    def __init__(self, status: int = 200):
        self.requests: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append({
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "body": self.rfile.read(length),
                })
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0KEN"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def payloads(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


class SmtpReceiver:
    """aiosmtpd on a free port; messages kept as parsed email objects."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        # aiosmtpd logs every SMTP verb from its thread; keep the test output for failures.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        receiver = self
        self.messages: list[tuple[list[str], email.message.Message]] = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                receiver.messages.append(
                    (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
                return "250 OK"

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def conn_uri(self) -> str:
        return (f"smtp://127.0.0.1:{self.port}?disable_ssl=true&disable_tls=true"
                "&retry_limit=0&timeout=5")

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def _html_body(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode("utf-8")
    return ""


def _send_dq_alert(*, settings, **fields) -> bool:
    """A data-quality alert through every configured channel: True when all delivered."""
    alert = alerting.Alert(event="dq_breach", dag_id="vee_nightly_scoring", **fields)
    results = alerting.send_alert(alert, settings)
    return bool(results) and all(results.values())


@pytest.fixture
def settings():
    return get_settings().with_overrides(alert_webhook_url=None, alert_email=None)


def test_dq_breach_posts_json_to_the_webhook(settings):
    with WebhookReceiver() as hook:
        ok = _send_dq_alert(
            run_id="scheduled__2026-03-01T05:00:00+00:00",
            read_date="2026-03-01",
            reason=f"quarantine share 0.41 > 0.20 (postgresql://vee:{SECRET}@db:5432/vee)",
            link="/var/reports/nightly/2026-03-01/run/index.html",
            settings=settings.with_overrides(alert_webhook_url=hook.url),
        )
    assert ok is True
    (request,) = hook.requests
    assert request["path"] == "/hooks/T0KEN"
    assert request["content_type"] == "application/json"
    assert SECRET.encode() not in request["body"]
    payload = json.loads(request["body"])
    assert payload["event"] == "dq_breach"
    assert payload["dag_id"] == "vee_nightly_scoring"
    assert payload["run_id"] == "scheduled__2026-03-01T05:00:00+00:00"
    assert payload["read_date"] == "2026-03-01"
    assert payload["link"] == "/var/reports/nightly/2026-03-01/run/index.html"
    assert payload["reason"].startswith("quarantine share 0.41 > 0.20")
    assert "postgresql://vee:***@db:5432/vee" in payload["reason"]


def test_a_data_quality_warning_posts_its_own_event(settings):
    """A run that went on with a warning (an empty day after busy days) reaches the same
    channels as a failure, told apart by its event and subject."""
    with WebhookReceiver() as hook:
        results = alerting.warn_data_quality(
            "vee_nightly_scoring", "manual__1", "2026-03-31",
            "volume: 0 exceptions on the read date, 0.00x the median 7 ...",
            "/var/reports/nightly/2026-03-31/manual__1/index.html",
            settings.with_overrides(alert_webhook_url=hook.url),
        )
    assert results == {"webhook": True}
    (payload,) = hook.payloads()
    assert payload["event"] == "dq_warning" and payload["read_date"] == "2026-03-31"
    assert payload["reason"].startswith("volume: 0 exceptions")
    assert payload["link"].endswith("manual__1/index.html")
    alert = alerting.Alert(event="dq_warning", dag_id="vee_nightly_scoring", run_id="manual__1",
                           read_date="2026-03-31", reason="volume: 0 exceptions")
    assert "data-quality warning" in alert.subject()


def test_a_broken_webhook_is_logged_not_raised(settings, caplog, capfd):
    with WebhookReceiver(status=500) as hook:
        ok = _send_dq_alert(run_id="r", read_date="2026-03-01", reason="x",
                                       settings=settings.with_overrides(alert_webhook_url=hook.url))
    assert ok is False and len(hook.requests) == 1
    # Airflow's logging setup may own the handlers: look at whatever reached the terminal too.
    logged = caplog.text + "".join(capfd.readouterr())
    assert "HTTP 500" in logged
    assert "T0KEN" not in logged  # the webhook's path (its token) is never logged

    dead = f"http://127.0.0.1:{_free_port()}/hooks/T0KEN"  # nothing listens: refused
    assert _send_dq_alert(run_id="r", read_date="2026-03-01", reason="x",
                                     settings=settings.with_overrides(alert_webhook_url=dead)) is False
    # No channel configured: nothing sent, reported as not delivered.
    assert _send_dq_alert(run_id="r", read_date="2026-03-01", reason="x",
                                     settings=settings) is False


def test_dq_breach_sends_email_through_the_airflow_smtp_connection(settings, monkeypatch):
    with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_VEE_TEST_SMTP", smtp.conn_uri())
        ok = _send_dq_alert(
            run_id="manual__1", read_date="2026-03-02",
            reason=f"volume ratio 7.5 above 5.0; password={SECRET}",
            link="/var/vee/reports/nightly/2026-03-02/manual__1/index.html",
            settings=settings.with_overrides(
                alert_email="ops@example.com, oncall@example.com",
                alert_smtp_conn_id="vee_test_smtp", alert_webhook_url=hook.url),
        )
        assert ok is True
        assert len(hook.requests) == 1  # both channels, once each
        (recipients, message), = smtp.messages
    assert sorted(recipients) == ["oncall@example.com", "ops@example.com"]
    assert message["Subject"].startswith("[VEE] vee_nightly_scoring 2026-03-02: data-quality gate breached")
    assert message["From"] == "vee-alerts@localhost"
    body = _html_body(message)
    assert "manual__1" in body and "volume ratio 7.5 above 5.0" in body
    assert "/var/vee/reports/nightly/2026-03-02/manual__1/index.html" in body
    assert SECRET not in message.as_string() and SECRET not in body


def test_missing_smtp_connection_does_not_raise(settings):
    assert _send_dq_alert(
        run_id="r", read_date="2026-03-01", reason="x",
        settings=settings.with_overrides(alert_email="ops@example.com",
                                         alert_smtp_conn_id="no_such_connection")) is False


def test_on_failure_never_raises_on_an_odd_context(settings, monkeypatch):
    alerting.on_failure({})
    alerting.on_failure({"dag_run": object(), "exception": ValueError("x")})


@pytest.mark.slow
def test_failed_task_in_a_real_dag_run_alerts(tmp_path):
    """`airflow dags test` of a DAG whose task fails: the callback posts to the webhook."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(textwrap.dedent(f"""
        import pendulum
        from airflow.sdk import dag, task
        from vee_tasks import alerting

        @dag(dag_id="vee_alert_probe", schedule=None, catchup=False,
             start_date=pendulum.datetime(2026, 1, 1, tz="America/Toronto"),
             default_args={{"on_failure_callback": alerting.on_failure, "retries": 0}})
        def probe():
            @task
            def extract():
                raise RuntimeError("warehouse said no: postgresql://vee:{SECRET}@db/vee")
            extract()

        probe()
    """))
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    with WebhookReceiver() as hook:
        env["VEE_ALERT_WEBHOOK_URL"] = hook.url
        done = subprocess.run([airflow, "dags", "test", "vee_alert_probe", "2026-03-01"],
                              env=env, capture_output=True, text=True, timeout=300)
    assert "state=failed" in done.stdout + done.stderr
    (payload,) = hook.payloads()
    assert payload["event"] == "task_failed"
    assert payload["dag_id"] == "vee_alert_probe"
    assert payload["task_id"] == "extract"
    assert payload["read_date"] == "2026-03-01"
    assert payload["run_id"].startswith("manual__")
    assert "/dags/vee_alert_probe/runs/" in payload["link"]
    assert "RuntimeError: warehouse said no" in payload["reason"]
    assert SECRET not in json.dumps(payload)


def test_a_task_stopped_by_a_data_quality_gate_is_a_dq_breach(settings, monkeypatch):
    class DataQualityError(RuntimeError):
        pass

    class Ti:
        dag_id, task_id, run_id = "vee_nightly_scoring", "validate", "scheduled__2026-03-02"
        log_url = "http://ui/dags/vee_nightly_scoring/runs/scheduled__2026-03-02/tasks/validate"

    try:
        try:
            raise DataQualityError("data quality: volume ratio 9.1 above 5.0 (report "
                                   "/var/vee/reports/nightly/2026-03-02/r1/index.html)")
        except DataQualityError as inner:
            raise RuntimeError("AirflowFailException stand-in") from inner
    except RuntimeError as exc:
        wrapped = exc
    import datetime as dt

    logical = dt.datetime(2026, 3, 2, 5, tzinfo=dt.timezone.utc)  # local midnight, Toronto
    with WebhookReceiver() as hook:
        monkeypatch.setattr(alerting, "get_settings",
                            lambda: settings.with_overrides(alert_webhook_url=hook.url))
        alerting.on_failure({"ti": Ti(), "exception": wrapped, "logical_date": logical,
                             "run_id": Ti.run_id})
    (payload,) = hook.payloads()
    assert payload["event"] == "dq_breach"
    assert payload["read_date"] == "2026-03-02"
    assert payload["task_id"] == "validate"
    # the breach links to the gate's Data Docs, as docs/reports.md says (it linked the log)
    assert payload["link"] == "/var/vee/reports/nightly/2026-03-02/r1/index.html"


@pytest.mark.parametrize("dag_id, expected", [("vee_nightly_scoring", "2026-03-01"),
                                              ("vee_weekly_retraining", "2026-03-02")])
def test_an_alert_names_the_date_the_run_is_about_when_triggered_without_a_logical_date(
        settings, monkeypatch, dag_id, expected):
    """A manual trigger without a logical date scores the read date that ended last (the
    nightly) or trains as of today (the weekly); the nightly's alert named today, a date the
    run never touched (review, 2026-11-27)."""
    import datetime as dt
    from types import SimpleNamespace

    from vee_tasks.scoring.dag_tasks import read_date_from_context
    from vee_tasks.training.dag_tasks import as_of_from_context

    requested = dt.datetime(2026, 3, 2, 15, tzinfo=dt.timezone.utc)  # 10:00 in Toronto
    dag_run = SimpleNamespace(run_after=requested, logical_date=None, dag_id=dag_id)
    ti = SimpleNamespace(dag_id=dag_id, task_id="extract", run_id="manual__x", log_url="http://ui/x")
    context = {"ti": ti, "dag_run": dag_run, "logical_date": None, "run_id": "manual__x",
               "exception": RuntimeError("boom")}
    with WebhookReceiver() as hook:
        monkeypatch.setattr(alerting, "get_settings",
                            lambda: settings.with_overrides(alert_webhook_url=hook.url))
        alerting.on_failure(context)
    (payload,) = hook.payloads()
    assert payload["read_date"] == expected
    task_date = (read_date_from_context(context, settings.timezone) if dag_id == "vee_nightly_scoring"
                 else as_of_from_context(context))
    assert task_date.isoformat() == expected  # the date the tasks themselves use


@pytest.mark.parametrize("dag_id", ["vee_nightly_scoring", "vee_weekly_retraining"])
def test_a_failed_task_of_each_dag_alerts_exactly_once(request, settings, monkeypatch, tmp_path, dag_id):
    """Every failure callback a task of the DAG runs, called as Airflow calls them: one alert,
    not one per callback that happens to alert (the weekly DAG used to send two)."""
    from airflow.dag_processing.dagbag import DagBag

    from vee_tasks.config import DAGS_DIR

    from vee_tasks.config import reset_settings_cache

    # The run-record callbacks find no warehouse here (and must not start an embedded one).
    monkeypatch.setenv("VEE_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    request.addfinalizer(reset_settings_cache)  # after monkeypatch restores the environment
    dag = DagBag(dag_folder=str(DAGS_DIR)).dags[dag_id]
    task = dag.tasks[0]
    callbacks = task.on_failure_callback
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]

    class Ti:
        task_id, run_id = task.task_id, "manual__2026-03-02"
        log_url = "http://ui/log"

    Ti.dag_id = dag_id
    context = {"ti": Ti(), "task_instance": Ti(), "run_id": Ti.run_id,
               "exception": RuntimeError("boom"),
               "logical_date": pendulum.datetime(2026, 3, 2, 5, tz="UTC")}
    with WebhookReceiver() as hook:
        monkeypatch.setattr(alerting, "get_settings",
                            lambda: settings.with_overrides(alert_webhook_url=hook.url))
        for callback in callbacks:
            callback(context)
    assert [p["event"] for p in hook.payloads()] == ["task_failed"]
