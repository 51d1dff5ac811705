"""Settings: where the warehouse URL comes from, and what a logged Settings shows."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from vee_tasks.config import Settings, airflow_uri_to_sqlalchemy


def test_a_json_connection_keeps_a_password_with_url_characters_intact():
    """Found in review on 2026-11-27: the password was pasted into the URL unquoted, so
    'p@ss/w:rd#1' made 'ss' the host and cut the database name."""
    spec = {"conn_type": "postgres", "login": "vee", "password": "p@ss/w:rd#1",
            "host": "db.example", "port": 5433, "schema": "warehouse"}
    url = sa.engine.make_url(airflow_uri_to_sqlalchemy(json.dumps(spec)))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "vee", "p@ss/w:rd#1", "db.example", 5433, "warehouse")
    bare = sa.engine.make_url(airflow_uri_to_sqlalchemy(json.dumps({"host": "db.example"})))
    assert (bare.username, bare.password, bare.host, bare.port, bare.database) == (
        None, None, "db.example", 5432, "postgres")


def test_a_json_connection_keeps_its_tls_and_other_libpq_options():
    """Found in review on 2026-11-27: the extra was dropped, so a connection asking for
    sslmode=verify-full connected without checking the server's certificate. Only libpq's
    own keywords go through: the Postgres provider's (cursor, iam...) made libpq refuse the
    connection, and a boolean is libpq's 1 or 0 (a second review, the same day)."""
    extra = {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/ca.pem", "connect_timeout": 10,
             "keepalives": True, "cursor": "realdictcursor", "iam": False,
             "enable_log_db_messages": True, "sqlalchemy_scheme": "postgresql"}
    for given in (extra, json.dumps(extra)):  # Airflow accepts a dict or a JSON string
        spec = {"conn_type": "postgres", "login": "vee", "host": "db.example", "extra": given}
        url = sa.engine.make_url(airflow_uri_to_sqlalchemy(json.dumps(spec)))
        assert dict(url.query) == {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/ca.pem",
                                   "connect_timeout": "10", "keepalives": "1"}
    unreadable = {"conn_type": "postgres", "host": "db.example", "extra": "{not json"}
    assert dict(sa.engine.make_url(airflow_uri_to_sqlalchemy(json.dumps(unreadable))).query) == {}


def test_a_json_connection_with_provider_extras_still_connects(server_url):
    """The provider's keys in the extra do not reach libpq: a real connection succeeds."""
    server = sa.engine.make_url(server_url)
    spec = {"conn_type": "postgres", "login": server.username, "password": server.password,
            "host": server.host or server.query.get("host"),  # or the embedded server's socket
            "port": server.port, "schema": server.database,
            "extra": {"cursor": "realdictcursor", "iam": False, "keepalives": True,
                      "application_name": "vee-config-test"}}
    engine = sa.create_engine(airflow_uri_to_sqlalchemy(json.dumps(spec)))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_setting('application_name')")).scalar() \
                == "vee-config-test"
    finally:
        engine.dispose()


def test_a_stored_connection_keeps_its_libpq_options_in_every_uri_form():
    """Outside review, 2026-11-29: Airflow's get_uri() writes the whole extra as one
    `__extra__` JSON value once a value is not a string, and that was dropped whole, so a
    stored connection asking for sslmode=verify-full connected without checking the server.
    The provider's own keys never reach libpq (a plain `cursor=` made it refuse), a libpq
    option this system does not list goes through (require_auth), and a socket directory in
    a JSON connection is libpq's host option."""
    from airflow.sdk import Connection

    extra = {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/ca.pem", "connect_timeout": 10,
             "require_auth": "scram-sha-256", "cursor": "realdictcursor", "iam": False}
    expected = {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/ca.pem",
                "connect_timeout": "10", "require_auth": "scram-sha-256"}
    stored = Connection(conn_id="w", conn_type="postgres", host="db.example", login="vee",
                        password="pw", schema="warehouse", extra=json.dumps(extra))
    assert "__extra__" in stored.get_uri()  # the form that lost the options
    url = sa.engine.make_url(airflow_uri_to_sqlalchemy(stored.get_uri()))
    assert (url.host, url.database, url.password) == ("db.example", "warehouse", "pw")
    assert dict(url.query) == expected
    # all strings: Airflow writes them as plain query parameters
    plain = {k: str(v) for k, v in extra.items()}
    stored = Connection(conn_id="w", conn_type="postgres", host="db.example", extra=json.dumps(plain))
    assert "__extra__" not in stored.get_uri()
    assert dict(sa.engine.make_url(airflow_uri_to_sqlalchemy(stored.get_uri())).query) == expected
    # a JSON connection: the same options, and a socket directory as libpq's host
    spec = {"conn_type": "postgres", "host": "/var/run/postgresql", "login": "vee",
            "schema": "warehouse", "extra": extra}
    url = sa.engine.make_url(airflow_uri_to_sqlalchemy(json.dumps(spec)))
    assert (url.host, url.database) == (None, "warehouse")
    assert dict(url.query) == {**expected, "host": "/var/run/postgresql"}


def test_a_misspelt_libpq_option_is_refused_at_connect_not_dropped(server_url):
    """Dropping an extra's unknown keys made a misspelt "sslmod" connect without TLS checks
    and without a word; libpq refuses it, as it does through the Postgres provider. The
    provider's own keys still connect, in both forms."""
    from airflow.sdk import Connection

    server = sa.engine.make_url(server_url)
    host = server.host or server.query.get("host")  # the embedded server: a socket directory
    for extra, refused in (({"sslmod": "verify-full"}, True),
                           ({"cursor": "realdictcursor", "connect_timeout": 5}, False)):
        stored = Connection(conn_id="w", conn_type="postgres", host=host, port=server.port,
                            login=server.username, password=server.password,
                            schema=server.database, extra=json.dumps(extra))
        spec = {"conn_type": "postgres", "host": host, "port": server.port,
                "login": server.username, "password": server.password,
                "schema": server.database, "extra": extra}
        for given in (stored.get_uri(), json.dumps(spec)):
            engine = sa.create_engine(airflow_uri_to_sqlalchemy(given))
            try:
                if refused:
                    with pytest.raises(sa.exc.DBAPIError, match="sslmod"):
                        engine.connect()
                else:
                    with engine.connect() as conn:
                        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            finally:
                engine.dispose()


def test_a_logged_settings_object_shows_no_credentials(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        warehouse_url="postgresql+psycopg2://vee:wh-secret@db/warehouse",
        mlflow_tracking_uri="postgresql://mlflow:ml-secret@db/mlflow",
        mlflow_registry_uri="postgresql://mlflow:reg-secret@db/mlflow",
        alert_webhook_url="https://hooks.example/T0/hook-secret",
    )
    shown = repr(settings) + str(settings)
    for secret in ("wh-secret", "ml-secret", "reg-secret", "hook-secret"):
        assert secret not in shown
    assert settings.tracking_uri_shown == "postgresql://mlflow:***@db/mlflow"


def test_a_failure_to_read_the_stored_connection_is_not_taken_for_no_connection(monkeypatch, tmp_path):
    """Only 'not defined' falls through to the embedded-server checks; any other error reading
    Airflow's connection store must fail the task rather than pick another warehouse."""
    from airflow.sdk import Connection

    from vee_tasks.config import reset_settings_cache
    from vee_tasks.warehouse import warehouse_url

    def store_down(conn_id):
        raise RuntimeError("API server unavailable")

    for name in ("VEE_WAREHOUSE_URL", "AIRFLOW_CONN_VEE_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "vee_nightly_scoring")
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("15\n")  # an embedded server "exists"
    monkeypatch.setattr(Connection, "get", classmethod(lambda cls, conn_id: store_down(conn_id)))
    reset_settings_cache()
    try:
        with pytest.raises(RuntimeError, match="API server unavailable"):
            warehouse_url()
    finally:
        monkeypatch.undo()
        reset_settings_cache()


def test_the_airflow_defaults_touch_nothing_outside_a_checkout(tmp_path):
    """In an installed package (the Docker image) the module must not point AIRFLOW_HOME at
    site-packages/var/airflow: its deployment sets Airflow's variables. Found in review on
    2026-11-27: AIRFLOW_HOME was set before the checkout check."""
    import os
    import shutil
    import subprocess
    import sys

    from vee_tasks import airflow_defaults

    installed = tmp_path / "site-packages" / "vee_tasks"
    installed.mkdir(parents=True)
    shutil.copy(airflow_defaults.__file__, installed / "airflow_defaults.py")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AIRFLOW") and k not in ("VEE_DATA_DIR", "PYTHONPATH")}
    probe = ("import os, runpy; runpy.run_path(os.environ['DEFAULTS']); "
             "print(os.environ.get('AIRFLOW_HOME'), os.environ.get('AIRFLOW__CORE__DAGS_FOLDER'))")
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe], env={**env, "DEFAULTS": str(installed / "airflow_defaults.py")},
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out == ["None", "None"]
    assert not (tmp_path / "site-packages" / "var").exists()


def test_auto_apply_codes_are_read_checked_and_ordered(monkeypatch):
    from vee_tasks.config import RESOLUTION_CODES, load_settings

    monkeypatch.delenv("VEE_AUTO_APPLY_CODES", raising=False)
    assert load_settings().auto_apply_codes == RESOLUTION_CODES
    monkeypatch.setenv("VEE_AUTO_APPLY_CODES", "estimate, ACCEPT")
    assert load_settings().auto_apply_codes == ("ACCEPT", "ESTIMATE")
    monkeypatch.setenv("VEE_AUTO_APPLY_CODES", "none")
    assert load_settings().auto_apply_codes == ()
    for empty in ("", " "):  # an env file's `VEE_AUTO_APPLY_CODES=`: the default, as elsewhere
        monkeypatch.setenv("VEE_AUTO_APPLY_CODES", empty)
        assert load_settings().auto_apply_codes == RESOLUTION_CODES
    monkeypatch.setenv("VEE_AUTO_APPLY_CODES", "ACCEPT,TRUCK")
    with pytest.raises(ValueError, match="unknown resolution code.*TRUCK"):
        load_settings()


def test_a_wrong_time_zone_name_is_named_at_startup(monkeypatch):
    """`Mars/Base` surfaced as "Dag 'vee_nightly_scoring' could not be found" (outside probe,
    2026-11-27)."""
    from vee_tasks.config import load_settings

    monkeypatch.setenv("VEE_TIMEZONE", "Mars/Base")
    with pytest.raises(ValueError, match="VEE_TIMEZONE='Mars/Base' is not a time zone name"):
        load_settings()
    monkeypatch.setenv("VEE_TIMEZONE", "America")  # a directory of the zone database
    with pytest.raises(ValueError, match="is not a time zone name"):
        load_settings()
    monkeypatch.setenv("VEE_TIMEZONE", "Australia/Sydney")
    assert load_settings().timezone == "Australia/Sydney"


@pytest.mark.parametrize("name, value, said", [
    ("VEE_TIMEZONE", "Mars/Base", "VEE_TIMEZONE='Mars/Base' is not a time zone name"),
    ("VEE_AUTO_APPLY_CODES", "ACCEPT,TRUCK", "VEE_AUTO_APPLY_CODES: unknown resolution code(s) TRUCK"),
    ("VEE_AUDIT_SHARE", "2", "VEE_AUDIT_SHARE=2.0 must be a share between 0 and 1"),
    ("VEE_AUDIT_SHARE", "abc", "VEE_AUDIT_SHARE='abc' is not a number"),
    ("VEE_SHARD_COUNT", "four", "VEE_SHARD_COUNT='four' is not a whole number"),
])
def test_a_bad_setting_is_one_line_from_the_command_line(name, value, said, tmp_path):
    """Each printed 28 lines of traceback before its message (outside probe, 2026-11-27)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, name: value, "VEE_DATA_DIR": str(tmp_path),
           "VEE_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}
    done = subprocess.run([sys.executable, "-m", "vee_tasks.cli", "db", "status"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"vee: error: {said}"), done.stderr


def test_every_setting_is_in_the_compose_examples():
    """Each VEE_ variable vee_tasks/config.py reads is in vee.env.example (tunable settings)
    or .env.example (secrets and the stack's own), or is per host by nature: an outside
    probe found nine settings, two of them named in the README, in neither."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    read = set(re.findall(r'"(VEE_[A-Z_]+)"', (root / "vee_tasks" / "config.py").read_text()))
    listed = set(re.findall(r"\b(VEE_[A-Z_]+)=", (root / "vee.env.example").read_text()
                            + (root / ".env.example").read_text()))
    per_host = {"VEE_WAREHOUSE_URL", "VEE_DATA_DIR", "VEE_UI_HOST", "VEE_UI_ADMIN_PASSWORD",
                "VEE_WORKER_NAME"}
    assert len(read) > 30
    assert read - listed - per_host == set()


def test_a_task_logs_which_warehouse_setting_it_uses(monkeypatch, caplog, tmp_path):
    """AIRFLOW_CONN_VEE_WAREHOUSE beats VEE_WAREHOUSE_URL, which beats the connection stored
    in Airflow: a variable left in a worker's environment silently beat a connection edited
    in the UI (outside review, 2026-11-29). Each task now says which one it uses (no
    password: host, port and database only)."""
    import logging

    from vee_tasks.config import reset_settings_cache
    from vee_tasks.warehouse import dispose_engines, task_engine

    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "vee_nightly_scoring")
    monkeypatch.setenv("VEE_WAREHOUSE_URL", "postgresql://u:secret1@url-host:5439/w1")
    for conn, said in (("postgres://u:secret2@conn-host:5438/w2",
                        "warehouse conn-host:5438/w2 (from AIRFLOW_CONN_VEE_WAREHOUSE)"),
                       (None, "warehouse url-host:5439/w1 (from VEE_WAREHOUSE_URL)")):
        if conn:
            monkeypatch.setenv("AIRFLOW_CONN_VEE_WAREHOUSE", conn)
        else:
            monkeypatch.delenv("AIRFLOW_CONN_VEE_WAREHOUSE", raising=False)
        reset_settings_cache()
        caplog.clear()
        try:
            with caplog.at_level(logging.INFO, logger="vee_tasks.warehouse"):
                task_engine()  # makes the engine; connects to nothing
        finally:
            dispose_engines()
        assert said in caplog.text and "secret" not in caplog.text
    monkeypatch.undo()
    reset_settings_cache()
