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
