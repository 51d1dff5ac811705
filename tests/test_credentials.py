"""Secrets stay out of what the system prints and logs: URLs shown, alert logs, MLflow's
messages. Each case was found by an outside review on 2026-11-28 and failed before its fix."""

from __future__ import annotations

import logging
import os

import pytest
import sqlalchemy as sa

from vee_tasks import alerting
from vee_tasks.config import (
    airflow_uri_to_sqlalchemy,
    get_settings,
    redact_url,
    reset_settings_cache,
    sqlalchemy_url_for_warehouse,
)

SECRET = "S3cret-do-not-leak"


def _unset_for_this_test(monkeypatch, *names: str) -> None:
    """Unset now, and put back as they were after the test, also when the code under test
    sets them itself (monkeypatch only restores what it saw)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture
def fresh_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()


def test_a_uri_connection_with_a_raw_at_in_its_password_is_read_as_airflow_reads_it():
    """Airflow reads u:p@ss@host as password 'p@ss'; SQLAlchemy's parser cut at the first '@'
    and showed the password's tail as the host in 'did not answer' errors."""
    from airflow.models.connection import Connection

    uri = f"postgresql://vee:p@{SECRET}@db.example:5433/warehouse?sslmode=require"
    airflow = Connection(conn_id="w", uri=uri)
    url = sa.engine.make_url(airflow_uri_to_sqlalchemy(uri))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        airflow.login, airflow.password, airflow.host, airflow.port, airflow.schema)
    assert url.password == f"p@{SECRET}" and url.host == "db.example"
    assert dict(url.query) == {"sslmode": "require"}
    # percent-encoded parts; Airflow's __extra__ JSON is the whole extra, as Airflow reads it:
    # a plain parameter beside it is not read (it could turn verify-full into disable)
    for uri, options in (
            ("postgres://vee:p%40ss@db/w%20h?__extra__=%7B%7D&connect_timeout=5", {}),
            ('postgres://vee:p%40ss@db/w%20h?__extra__={"sslmode":"verify-full","cursor":"x"}'
             "&sslmode=disable", {"sslmode": "verify-full"})):
        url = sa.engine.make_url(airflow_uri_to_sqlalchemy(uri))
        assert (url.password, url.database, dict(url.query)) == ("p@ss", "w h", options)
        assert {k: v for k, v in Connection(conn_id="w", uri=uri).extra_dejson.items()
                if k != "cursor"} == options
    socket = "postgresql://vee@%2Fvar%2Frun%2Fpostgresql/w"  # Airflow's way to name a socket
    assert Connection(conn_id="s", uri=socket).host == "/var/run/postgresql"
    assert sa.engine.make_url(airflow_uri_to_sqlalchemy(socket)).query == {"host": "/var/run/postgresql"}


def test_each_url_form_is_read_by_its_own_parser_and_an_ambiguous_login_is_refused_unquoted():
    """A second review (2026-11-28): reading VEE_WAREHOUSE_URL like an Airflow URI broke a raw
    '/' in its password (SQLAlchemy's parser reads it), and could name part of the password
    as the database; a repeated host= (libpq failover) kept only the last host."""
    url = sa.engine.make_url(sqlalchemy_url_for_warehouse(
        f"postgresql://vee:123/{SECRET}@db.internal:5432/vee"))
    assert (url.password, url.host, url.port, url.database) == (
        f"123/{SECRET}", "db.internal", 5432, "vee")
    for reader, ambiguous in (
            (airflow_uri_to_sqlalchemy, f"postgresql://vee:123/{SECRET}@db.internal:5432/vee"),
            (sqlalchemy_url_for_warehouse, f"postgresql://vee:p@{SECRET}@db.internal:5432/vee")):
        with pytest.raises(ValueError, match="percent-encode") as refused:
            reader(ambiguous)
        assert SECRET not in str(refused.value)
    # a raw "?" in the password: its tail read as an option name, which libpq's refusal
    # quoted (outside review, 2026-11-29)
    for ambiguous in (f"postgresql://vee:?{SECRET}@db.internal/vee",
                      f"postgresql://vee:12?{SECRET}@db.internal/vee",
                      f"postgresql://vee:12?{SECRET}=x@db.internal/vee",
                      f"postgresql://vee:p@{SECRET}?w@db.internal/vee",
                      f"postgresql://vee:?{SECRET}/x@db.internal/vee",
                      f"postgresql://vee:12?{SECRET}/x@db.internal/vee"):
        with pytest.raises(ValueError, match="percent-encode") as refused:
            airflow_uri_to_sqlalchemy(ambiguous)
        assert SECRET not in str(refused.value)
    # an "@" in an option's value is no login
    assert sa.engine.make_url(airflow_uri_to_sqlalchemy(
        "postgresql://db.example:5432/w?application_name=etl@box")).query == {
            "application_name": "etl@box"}
    failover = "postgresql://vee:pw@/w?host=pg1:5432&host=pg2:5432&target_session_attrs=read-write"
    for reader in (airflow_uri_to_sqlalchemy, sqlalchemy_url_for_warehouse):
        query = sa.engine.make_url(reader(failover)).query
        assert query["host"] == ("pg1:5432", "pg2:5432"), reader


def test_a_shown_url_masks_passwords_in_the_user_part_and_the_query():
    shown = redact_url(f"postgresql://vee:{SECRET}@db/w?sslpassword={SECRET}&sslmode=require")
    assert SECRET not in shown
    assert shown == "postgresql://vee:***@db/w?sslpassword=***&sslmode=require"
    assert redact_url("sqlite:////var/vee/mlflow.db") == "sqlite:////var/vee/mlflow.db"
    assert redact_url(f"postgresql://vee:p@{SECRET}@db/w") == "postgresql://vee:***@db/w"


def test_vee_db_url_prints_no_password_from_the_query(monkeypatch, fresh_settings, capsys):
    from vee_tasks.cli import main
    from vee_tasks.warehouse import dispose_engines

    monkeypatch.setenv("VEE_WAREHOUSE_URL",
                       f"postgresql://vee@db.example/w?sslpassword={SECRET}&password={SECRET}"
                       "&sslmode=verify-full")
    reset_settings_cache()
    dispose_engines()
    try:
        assert main(["db", "url"]) == 0
    finally:
        dispose_engines()
    out = capsys.readouterr().out
    assert SECRET not in out
    assert "sslmode=verify-full" in out and "db.example" in out


def test_a_secret_named_in_a_key_is_scrubbed():
    text = alerting.scrub(f"connect sslpassword={SECRET} client_secret: {SECRET} "
                          f"Authorization: Bearer {SECRET} sslmode=require")
    assert SECRET not in text and "sslmode=require" in text


@pytest.mark.parametrize("url", [
    f"https://alerts:{SECRET}@hooks.example:notaport/hook",  # the password read as a port
    f"https://hooks.example:8443/a/{SECRET}:x@y",
    f"hooks.example/T0/{SECRET}",  # no scheme: urllib's ValueError quoted the whole URL
    f"ftp://hooks.example/{SECRET}",
])
def test_an_unusable_webhook_url_is_logged_without_its_secret(url, fresh_settings, caplog, capfd):
    settings = get_settings().with_overrides(alert_webhook_url=url, alert_timeout_seconds=2.0)
    alert = alerting.Alert(event="dq_breach", dag_id="vee_nightly_scoring", run_id="r",
                           read_date="2026-03-01", reason="x")
    with caplog.at_level(logging.INFO):
        results = alerting.send_alert(alert, settings)
    assert results == {"webhook": False}
    logged = caplog.text + "".join(capfd.readouterr())
    assert "alert webhook" in logged
    assert SECRET not in logged


def test_mlflow_gets_an_http_registry_login_apart_from_the_uri(monkeypatch, fresh_settings):
    """MLflow repeats the URI it is given ('API request to ...') and prints it to stdout at
    the end of each run ('View run ... at'), i.e. into the task log: the login goes to
    MLflow's own variables and the print is off."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT
    from mlflow.tracking._tracking_service.utils import get_default_host_creds

    from vee_tasks import registry

    _unset_for_this_test(monkeypatch, "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                         "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "MLFLOW_REGISTRY_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://vee:{SECRET}@127.0.0.1:5999")
    reset_settings_cache()
    client = registry.configure()
    assert SECRET not in client._tracking_client.tracking_uri
    with registry.mlflow_uris():
        assert mlflow.get_tracking_uri() == "http://127.0.0.1:5999"
        assert MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.get() is True
        creds = get_default_host_creds(mlflow.get_tracking_uri())
        assert (creds.username, creds.password) == ("vee", SECRET)
        assert SECRET not in creds.host


def test_mlflow_logins_of_two_servers_stay_with_their_servers(monkeypatch):
    """A second review (2026-11-28): one process-wide login sent the registry's password to
    the tracking server, or the tracking server's to a registry without a login."""
    from vee_tasks.registry import _login_to_environment

    _unset_for_this_test(monkeypatch, "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                         "MLFLOW_TRACKING_TOKEN")
    two = ("http://alice:a-pass@tracking:5000", "http://bob:b-pass@registry:5000")
    one = ("http://alice:a-pass@tracking:5000", "http://registry:5000")
    for tracking, registry_uri in (two, one):
        assert _login_to_environment(tracking, registry_uri) == (tracking, registry_uri)
        assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    # one server (or a database registry beside it): the login moves, and again on a later call
    for _ in range(2):
        assert _login_to_environment("http://alice:a-pass@tracking:5000", "sqlite:////r.db") == (
            "http://tracking:5000", "sqlite:////r.db")
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == (
        "alice", "a-pass")
    # an operator's own login is left alone, and so are the URIs
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "carol")
    assert _login_to_environment(*two[:1], two[0]) == (two[0], two[0])
