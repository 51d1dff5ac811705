"""`vee db upgrade`: applies to an empty database, records what it applied, is idempotent."""

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from vee_tasks import migrations

CONTRACT_COLUMNS = {
    ("mdm", "meter"): {
        "meter_id": "text", "service_point_id": "text", "customer_class": "text",
        "meter_kind": "text", "multiplier": "double precision", "interval_minutes": "smallint",
        "has_der": "boolean", "region": "text", "installed_on": "date",
    },
    ("mdm", "weather_daily"): {"region": "text", "day": "date", "mean_temp_c": "real"},
    ("mdm", "interval_read"): {
        "meter_id": "text", "interval_start": "timestamp with time zone",
        "value_kwh": "double precision", "quality": "character",
        "received_at": "timestamp with time zone",
    },
    ("mdm", "vee_exception"): {
        "exception_id": "bigint", "meter_id": "text", "rule_code": "text", "read_date": "date",
        "window_start": "timestamp with time zone", "window_end": "timestamp with time zone",
        "observed_value": "double precision", "expected_value": "double precision",
        "rule_version": "text", "raised_at": "timestamp with time zone", "status": "text",
        "status_changed_at": "timestamp with time zone",
    },
    ("mdm", "analyst_resolution"): {
        "exception_id": "bigint", "resolution_code": "text", "resolved_by": "text",
        "resolved_at": "timestamp with time zone", "note": "text",
    },
    ("vee", "exception_resolution"): {
        "exception_id": "bigint", "read_date": "date", "predicted_resolution": "text",
        "confidence": "double precision", "probabilities": "jsonb", "decision": "text",
        "model_name": "text", "model_version": "text", "dag_run_id": "text",
        "scored_at": "timestamp with time zone",
    },
    ("vee", "quarantined_exception"): {
        "exception_id": "bigint", "read_date": "date", "dag_run_id": "text",
        "failed_checks": "ARRAY", "payload": "jsonb",
        "quarantined_at": "timestamp with time zone",
    },
}


def _columns(engine, schema, table):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t"
            ),
            {"s": schema, "t": table},
        ).fetchall()
    return dict(rows)


def test_the_contract_shipped_with_the_code_is_the_teams_and_matches_the_migrations():
    """docs/warehouse-contract.md is the copy a clone carries (the team's lives beside the
    checkout, in ../shared): the same text, and every mdm column the migrations check is in it."""
    from vee_tasks.config import PROJECT_DIR

    shipped = (PROJECT_DIR / "docs" / "warehouse-contract.md").read_text(encoding="utf-8")
    shared = PROJECT_DIR.parent / "shared" / "warehouse-contract.md"
    if shared.exists():
        assert shipped == shared.read_text(encoding="utf-8"), "copy ../shared/warehouse-contract.md into docs/"
    for table, columns in migrations.MDM_CONTRACT_COLUMNS.items():
        assert f"mdm.{table}" in shipped
        for column in columns:
            assert column in shipped, (table, column)


def test_upgrade_creates_contract_tables_and_is_idempotent(databases):
    engine = sa.create_engine(databases.create("migrate"))
    first = migrations.upgrade(engine, with_mdm=True)
    assert {m.track for m in first} == {"mdm", "vee"}
    for (schema, table), expected in CONTRACT_COLUMNS.items():
        actual = _columns(engine, schema, table)
        for column, data_type in expected.items():
            assert actual.get(column) == data_type, (schema, table, column, actual.get(column))
    assert migrations.upgrade(engine, with_mdm=True) == []
    recorded = migrations.applied(engine)
    assert len(recorded) == len(first)
    engine.dispose()


def test_upgrade_without_mdm_leaves_mdm_alone(databases):
    engine = sa.create_engine(databases.create("vee_only"))
    applied = migrations.upgrade(engine)
    assert applied and {m.track for m in applied} == {"vee"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('mdm.meter')")).scalar() is None
        assert conn.execute(sa.text("SELECT to_regclass('vee.exception_resolution')")).scalar()
    # Adding the MDMS tables later applies just those.
    later = migrations.upgrade(engine, with_mdm=True)
    assert {m.track for m in later} == {"mdm"}
    engine.dispose()


def test_what_a_migration_tells_the_dba_reaches_the_operator(databases, caplog):
    """The migrations RAISE NOTICE what the migrator could not do (here: no mdm schema to grant
    on); `vee db upgrade` must show it, not swallow it. PostgreSQL's own IF NOT EXISTS
    notices are not repeated."""
    engine = sa.create_engine(databases.create("notices"))
    with caplog.at_level("WARNING", logger="vee_tasks.migrations"):
        migrations.upgrade(engine)
    said = [r.getMessage() for r in caplog.records if r.name == "vee_tasks.migrations"]
    assert any("schema mdm absent" in m for m in said), said
    assert not any("skipping" in m for m in said), said
    engine.dispose()


def test_changed_migration_is_refused(databases, monkeypatch):
    engine = sa.create_engine(databases.create("checksum"))
    migrations.upgrade(engine)
    original = migrations.Migration.checksum
    monkeypatch.setattr(migrations.Migration, "checksum", property(lambda self: "0" * 64))
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        migrations.upgrade(engine)
    monkeypatch.setattr(migrations.Migration, "checksum", original)
    engine.dispose()


def test_cli_upgrade_unreachable_server_names_host_and_port():
    env = {"VEE_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1:1/nowhere", "PATH": ""}
    import os

    env = {**os.environ, **env}
    env.pop("AIRFLOW_CONN_VEE_WAREHOUSE", None)
    done = subprocess.run(
        [sys.executable, "-m", "vee_tasks.cli", "db", "upgrade"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert len(lines) == 1, done.stderr
    assert "127.0.0.1:1" in lines[0]


def test_cli_refused_by_the_warehouse_says_why_in_one_line(databases):
    """A login outside the vee roles (the MDMS's owner, say): `vee db status` says the
    warehouse refused and why, in one line, not with a traceback."""
    import os
    import uuid

    url = databases.create("refused")
    engine = sa.create_engine(url)
    migrations.upgrade(engine)
    role = f"vee_test_outsider_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.commit()
    try:
        outsider = sa.engine.make_url(url).set(drivername="postgresql", username=role, password=None)
        env = {**os.environ, "VEE_WAREHOUSE_URL": outsider.render_as_string(hide_password=False)}
        env.pop("AIRFLOW_CONN_VEE_WAREHOUSE", None)
        done = subprocess.run([sys.executable, "-m", "vee_tasks.cli", "db", "status"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 1
        lines = [line for line in done.stderr.strip().splitlines() if line]
        assert lines[-1].startswith("vee: error: the warehouse refused: "), done.stderr
        assert "permission denied" in lines[-1] and "Traceback" not in done.stderr
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
            conn.commit()
        engine.dispose()


def test_a_run_on_a_warehouse_without_the_mdm_tables_names_them_in_one_line(databases, tmp_path):
    """`vee score` and `vee train` where the MDMS has not made its tables yet: one line naming
    them, before any step trips over one (an outside probe met a driver's traceback from
    training and 11 "column is missing" lines from scoring). So does a warehouse URL that is
    no URL, instead of a traceback."""
    import os

    url = databases.create("no_mdm")
    engine = sa.create_engine(url)
    migrations.upgrade(engine)  # schema vee only
    engine.dispose()
    env = {**os.environ, "VEE_WAREHOUSE_URL": url.replace("postgresql+psycopg2://", "postgresql://"),
           "VEE_DATA_DIR": str(tmp_path / "data"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("AIRFLOW_CONN_VEE_WAREHOUSE", None)
    for command in (["score", "--read-date", "2026-03-01"], ["train", "--as-of", "2026-03-01"]):
        done = subprocess.run([sys.executable, "-m", "vee_tasks.cli", *command],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("vee: error: the warehouse lacks the contract's table(s) mdm.meter"), done.stderr
        assert "Traceback" not in done.stderr and "is missing" not in done.stderr, done.stderr
    engine = sa.create_engine(url)
    with engine.connect() as conn:  # the nightly run's record says why
        status, message = conn.execute(sa.text(
            "SELECT status, message FROM vee.scoring_run WHERE dag_run_id = 'cli__2026-03-01'")).one()
    engine.dispose()
    assert status == "FAILED" and "lacks the contract's table(s) mdm.meter" in message
    for wrong in ("127.0.0.1:5432/vee", "postgresql://vee:p@ss@127.0.0.1/vee"):
        done = subprocess.run([sys.executable, "-m", "vee_tasks.cli", "db", "status"],
                              capture_output=True, text=True, timeout=120,
                              env={**env, "VEE_WAREHOUSE_URL": wrong})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("vee: error: "), done.stderr
        assert "p@ss" not in done.stderr


def test_dag_tasks_on_a_warehouse_behind_the_release_fail_at_once_naming_the_upgrade(
        databases, empty_warehouse_url, monkeypatch, tmp_path, capsys, caplog):
    """The DAGs' tasks do not migrate: after a release with a new migration, before the
    owner's `vee db upgrade`, the nightly run failed on the bare SQL error of a missing
    table or column, with no run record (outside review, 2026-11-29). Both DAGs' first
    tasks now fail at once, without retries, naming what is missing and the cure."""
    import datetime as dt

    from airflow.sdk.exceptions import AirflowFailException
    from robustness_support import clone_database

    from vee_tasks.config import reset_settings_cache
    from vee_tasks.scoring import steps
    from vee_tasks.scoring.errors import ScoringError
    from vee_tasks.training import dag_tasks as weekly
    from vee_tasks.warehouse import dispose_engines

    url = clone_database(databases, empty_warehouse_url, "behind")
    engine = sa.create_engine(url)
    newest = migrations.discover("vee")[-1]
    assert migrations.not_applied(engine, ["vee"]) == []
    with engine.begin() as conn:  # as if the release's newest migration had not been applied
        conn.execute(sa.text("DELETE FROM vee.schema_migration WHERE track = 'vee' AND version = :v"),
                     {"v": newest.version})
    assert migrations.not_applied(engine, ["vee"]) == [f"vee/{newest.version}_{newest.name}"]
    with pytest.raises(ScoringError, match=rf"behind this release: 1 migration\(s\) not applied "
                                           rf"\(vee/{newest.version}_{newest.name}\); run `vee db upgrade`"):
        steps.start_run(engine, "manual__behind", dt.date(2026, 3, 1))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM vee.scoring_run")).scalar() == 0
    monkeypatch.setenv("VEE_WAREHOUSE_URL", url)
    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    try:
        with pytest.raises(AirflowFailException, match="WarehouseBehind: .*run `vee db upgrade`"):
            weekly.extract_labels({"run_id": "manual__behind",
                                   "logical_date": dt.datetime(2026, 3, 2, 5, tzinfo=dt.timezone.utc)})
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM vee.training_run")).scalar() == 0
        # and `vee db status` does not call it ready (it exited 0; upgrade probe, 2026-11-29)
        from vee_tasks.cli import main

        capsys.readouterr()
        assert main(["db", "status"]) == 1
        said = capsys.readouterr()
        assert f"vee/{newest.version}_{newest.name}: not applied" in said.out
        assert ("error: 1 migration(s) of this release not applied: the DAGs' tasks refuse the "
                "warehouse until the owner of schema vee runs `vee db upgrade`") in said.err
        # the failure callback's summary page: one line, not a traceback of a missing column
        import logging

        from vee_tasks import reports

        with caplog.at_level(logging.WARNING):
            assert reports.after_nightly_run(engine) is not None  # its queries still work
            with engine.begin() as conn:  # as if a table of the missing migration were absent
                conn.execute(sa.text("ALTER TABLE vee.scoring_run RENAME TO scoring_run_later"))
            assert reports.after_nightly_run(engine) is None
        logged = caplog.text + "".join(capsys.readouterr())  # Airflow's logging may own stdout
        assert "summary not written: schema vee is behind" in logged
        assert "summary failed" not in logged
    finally:
        engine.dispose()
        dispose_engines()
        monkeypatch.undo()
        reset_settings_cache()


def test_an_upgrade_blocked_by_another_sessions_lock_fails_clearly_and_applies_nothing(
        databases, monkeypatch, tmp_path):
    """Upgrade probe, 2026-11-29: a transaction left open on a vee table (a dashboard) made
    `vee db upgrade` wait without end and without a word, holding meanwhile the locks it had
    taken, the analysts' queue table's among them. A lock wait now ends after
    MIGRATION_LOCK_TIMEOUT with what to do; nothing is applied."""
    url = databases.create("upgrade_blocked")
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    real_discover = migrations.discover
    script = tmp_path / "9999_add_a_column.sql"
    script.write_text("ALTER TABLE vee.scoring_run ADD COLUMN probe_note text;\n")
    monkeypatch.setattr(migrations, "discover", lambda track: real_discover(track) + (
        [migrations.Migration("vee", "9999", "add_a_column", script)] if track == "vee" else []))
    monkeypatch.setattr(migrations, "MIGRATION_LOCK_TIMEOUT", "1s")
    dashboard = sa.create_engine(url)
    try:
        with dashboard.connect() as conn:  # reads, and leaves its transaction open
            conn.execute(sa.text("SELECT count(*) FROM vee.scoring_run"))
            with pytest.raises(migrations.MigrationError,
                               match=r"vee/9999_add_a_column.sql failed, nothing was applied: "
                                     r".*lock timeout \(waited 1s for a lock another session "
                                     r"holds.*pg_stat_activity"):
                migrations.upgrade(engine, with_mdm=True)
            conn.rollback()
        assert "vee/9999_add_a_column" in migrations.not_applied(engine, ["vee"])
        # a concurrent upgrade (its advisory lock held 3 s, beyond the 1 s lock limit) is
        # still waited for, and then this one applies
        import threading
        import time

        held = threading.Event()

        def other_upgrade():
            with dashboard.begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                             {"k": migrations._ADVISORY_LOCK_KEY})
                held.set()
                time.sleep(3)

        other = threading.Thread(target=other_upgrade)
        other.start()
        assert held.wait(30)
        started = time.monotonic()
        assert [m.name for m in migrations.upgrade(engine, with_mdm=True)] == ["add_a_column"]
        assert time.monotonic() - started > 1.5
        other.join()
    finally:
        dashboard.dispose()
        engine.dispose()


def test_the_embedded_postgresql_stops_on_request():
    """`make demo`'s embedded server outlives the demo (later commands reuse it); `vee db
    stop-embedded` (and `make clean-data`, before it deletes var/) stops it."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    data_dir = Path(tempfile.mkdtemp(prefix="vee_stop_embedded_"))
    data_dir.chmod(0o755)  # as root, pgserver runs the server as its own user
    try:
        # started by another process, as by `make demo` (pgserver's exit hook then logs
        # there, not into pytest's closed streams)
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from "
                        "vee_tasks.warehouse import start_embedded_postgres; "
                        "start_embedded_postgres(Path(sys.argv[1]))", str(data_dir / "pgdata")],
                       check=True, capture_output=True, timeout=120)
        assert (data_dir / "pgdata" / "postmaster.pid").exists()
        env = {**os.environ, "VEE_DATA_DIR": str(data_dir)}
        said = []
        for _ in range(2):
            done = subprocess.run([sys.executable, "-m", "vee_tasks.cli", "db", "stop-embedded"],
                                  capture_output=True, text=True, env=env, timeout=120)
            assert done.returncode == 0, done.stderr
            said.append(done.stdout.strip().rsplit(": ", 1)[-1])
        assert said == ["stopped", "not running"]
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
        # a stale pid file whose pid now belongs to another process: that one is left alone
        bystander = subprocess.Popen(["sleep", "60"])
        try:
            (data_dir / "pgdata" / "postmaster.pid").write_text(
                f"{bystander.pid}\n{data_dir / 'pgdata'}\n1700000000\n5432\n")
            done = subprocess.run([sys.executable, "-m", "vee_tasks.cli", "db", "stop-embedded"],
                                  capture_output=True, text=True, env=env, timeout=120)
            assert done.returncode == 0 and done.stdout.strip().endswith("not running"), done
            assert bystander.poll() is None
        finally:
            bystander.kill()
            bystander.wait()
    finally:
        from vee_tasks.warehouse import stop_embedded_postgres

        stop_embedded_postgres(data_dir / "pgdata")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.parametrize("failure", ["nightly_gate", "training_suite", "programming_error"])
def test_cli_reports_a_data_quality_stop_in_one_line(monkeypatch, capsys, failure):
    """`vee score` / `vee train` stopped by a data-quality gate: the reason and the report's
    path, no traceback (found by an outside probe on 2026-11-27). Any other error keeps its
    traceback."""
    from vee_tasks import cli
    from vee_tasks.quality import DataQualityError as SuiteFailed, QualityResult
    from vee_tasks.scoring.errors import DataQualityError

    def stopped(args):
        if failure == "nightly_gate":
            raise DataQualityError("data quality: quarantine_share: 45 of 62 rows (73%) failed "
                                   "row checks (allowed 20%) (report /srv/r/index.html)")
        if failure == "training_suite":
            result = QualityResult("training_set", False, 30, ["resolution_code: not in set"],
                                   docs_index=Path("/srv/t/index.html"), report_dir=Path("/srv/t"))
            raise SuiteFailed(result.describe(), result)
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "cmd_score", stopped)
    if failure == "programming_error":
        with pytest.raises(KeyError):
            cli.main(["score", "--read-date", "2026-03-01"])
        return
    assert cli.main(["score", "--read-date", "2026-03-01"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vee: error: ") and "Traceback" not in err
    assert "/index.html" in err


# The contract's tables as an outside harness might create them: its columns and keys only, in
# another column order, no CHECK constraints, none of the supporting indexes.
HARNESS_MDM_DDL = """
CREATE SCHEMA mdm;
CREATE TABLE mdm.meter (meter_id text PRIMARY KEY, region text NOT NULL,
    service_point_id text NOT NULL, customer_class text NOT NULL, meter_kind text NOT NULL,
    multiplier double precision NOT NULL, interval_minutes smallint NOT NULL,
    has_der boolean NOT NULL, installed_on date NOT NULL);
CREATE TABLE mdm.weather_daily (region text, day date, mean_temp_c real, PRIMARY KEY (region, day));
CREATE TABLE mdm.interval_read (meter_id text NOT NULL REFERENCES mdm.meter,
    interval_start timestamptz NOT NULL, value_kwh double precision, quality char(1) NOT NULL,
    received_at timestamptz NOT NULL, PRIMARY KEY (meter_id, interval_start));
CREATE TABLE mdm.vee_exception (exception_id bigint PRIMARY KEY,
    meter_id text NOT NULL REFERENCES mdm.meter, rule_code text NOT NULL, read_date date NOT NULL,
    window_start timestamptz NOT NULL, window_end timestamptz NOT NULL,
    observed_value double precision, expected_value double precision, rule_version text NOT NULL,
    raised_at timestamptz NOT NULL, status text NOT NULL, status_changed_at timestamptz NOT NULL);
CREATE TABLE mdm.analyst_resolution (exception_id bigint PRIMARY KEY REFERENCES mdm.vee_exception,
    resolution_code text NOT NULL, resolved_by text NOT NULL, resolved_at timestamptz NOT NULL,
    note text);
INSERT INTO mdm.meter VALUES ('M-1', 'R1', 'SP-1', 'RES', 'AMI_1PH', 1, 60, false, '2020-01-01');
"""


def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "VEE_WAREHOUSE_URL": url}
    env.pop("AIRFLOW_CONN_VEE_WAREHOUSE", None)
    return subprocess.run(
        [sys.executable, "-m", "vee_tasks.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_with_mdm_keeps_contract_tables_made_by_someone_else(databases):
    """An evaluation harness may create the mdm tables itself and still run
    `vee db upgrade --with-mdm`: its tables and rows are kept, the vee schema is created."""
    url = databases.create("adopt")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(HARNESS_MDM_DDL)
    done = _cli(url, "db", "upgrade", "--with-mdm")
    assert done.returncode == 0, done.stderr
    assert "mdm tables already exist" in done.stderr
    assert "applied mdm/" not in done.stdout and "applied vee/0001" in done.stdout
    assert ("mdm", "0001", "mdm_contract_tables (adopted)") in set(migrations.applied(engine))
    status = _cli(url, "db", "status")
    assert "mdm/0001_mdm_contract_tables (adopted)" in status.stdout
    assert migrations.upgrade(engine, with_mdm=True) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM mdm.meter")).scalar() == 1
        # the harness's column order is kept: nothing was recreated
        assert conn.execute(sa.text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'mdm' AND table_name = 'meter' AND ordinal_position = 2"
        )).scalar() == "region"
        assert conn.execute(sa.text("SELECT to_regclass('vee.exception_resolution')")).scalar()
    # the supporting indexes are named, not created on the MDMS's tables
    assert done.stderr.count("warning: mdm.vee_exception has no index") == 2
    engine.dispose()


def test_with_mdm_refuses_tables_that_break_the_contract_in_one_line(databases):
    """Adopted tables missing a contract column failed later, in a grant, naming neither the
    table nor the contract (outside probe, 2026-11-27)."""
    url = databases.create("adopt_broken")
    engine = sa.create_engine(url)
    broken = (HARNESS_MDM_DDL
              .replace(", status text NOT NULL, status_changed_at timestamptz NOT NULL)",
                       ", status text NOT NULL)")
              .replace("interval_minutes smallint NOT NULL", "interval_minutes text NOT NULL")
              .replace("'AMI_1PH', 1, 60,", "'AMI_1PH', 1, '60',"))
    with engine.begin() as conn:
        conn.exec_driver_sql(broken)
    done = _cli(url, "db", "upgrade", "--with-mdm")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = [l for l in done.stderr.splitlines() if l.startswith("vee: error:")]
    assert "do not match docs/warehouse-contract.md" in line
    assert "mdm.vee_exception.status_changed_at is missing" in line
    assert "mdm.meter.interval_minutes is text, not smallint" in line
    assert migrations.applied(engine) == []
    engine.dispose()


def test_with_mdm_refuses_a_partial_mdm_schema_in_one_line(databases):
    url = databases.create("adopt_partial")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE SCHEMA mdm; CREATE TABLE mdm.meter (meter_id text PRIMARY KEY)"
        )
    with pytest.raises(migrations.MigrationError, match="partly there: mdm.meter exist"):
        migrations.upgrade(engine, with_mdm=True)
    assert migrations.applied(engine) == []  # one transaction: nothing recorded, nothing made
    done = _cli(url, "db", "upgrade", "--with-mdm")
    assert done.returncode == 1
    assert done.stderr.startswith("vee: error: schema mdm is partly there"), done.stderr
    assert "Traceback" not in done.stderr
    engine.dispose()


def test_a_failing_migration_is_one_clear_line_and_applies_nothing(databases):
    url = databases.create("migration_fails")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # something in the way of the first vee migration
        conn.exec_driver_sql("CREATE SCHEMA vee; CREATE VIEW vee.exception_resolution AS SELECT 1")
    done = _cli(url, "db", "upgrade")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "vee: error: vee/0001_vee_core_tables.sql failed, nothing was applied:" in done.stderr
    assert 'relation "exception_resolution" already exists' in done.stderr
    assert migrations.applied(engine) == []
    engine.dispose()
