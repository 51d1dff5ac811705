"""The `vee` command line: setup, simulation, training, scoring, reports, the Airflow UI.

Heavy libraries are imported inside each command so that `vee --help` is instant.
Exit codes: 0 success, 1 failure (one line on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from typing import Callable

from vee_tasks.config import get_settings

log = logging.getLogger("vee")


class UsageError(Exception):
    """Impossible arguments: reported in one line with exit code 2, nothing written."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _engine(upgrade: bool = False, with_mdm: bool = False):
    from vee_tasks import migrations
    from vee_tasks.warehouse import check_reachable, get_engine

    engine = get_engine()
    check_reachable(engine)
    if upgrade:
        # grants are `vee db upgrade`'s: this command may run as a least-privileged login
        migrations.upgrade(engine, with_mdm=with_mdm, grant_missing=False)
    return engine


# --- commands --------------------------------------------------------------------------


def cmd_db_upgrade(args) -> int:
    from vee_tasks import migrations
    from vee_tasks.warehouse import describe_target

    engine = _engine()
    applied = migrations.upgrade(engine, with_mdm=args.with_mdm)
    target = describe_target(engine.url.render_as_string(hide_password=True))
    if applied:
        for m in applied:
            print(f"applied {m.track}/{m.path.name}")
    print(f"warehouse {target} is up to date ({len(applied)} migration(s) applied)")
    _print_warehouse_problems(engine)
    return 0


def _print_warehouse_problems(engine) -> bool:
    """Say (stderr) which of the contract's tables the warehouse lacks, which indexes the
    MDMS's tables should have, and where this system's roles' privileges differ from what
    docs/security.md sets.
    Returns whether the warehouse is not ready: contract tables missing (no run can start),
    or privileges that differ (a run as a login lacking one fails)."""
    from vee_tasks.migrations import grant_statements, missing_grants, missing_mdm_tables
    from vee_tasks.warehouse import missing_supporting_indexes

    with engine.connect() as conn:
        missing_tables = missing_mdm_tables(conn)
        missing = missing_supporting_indexes(conn)
    if missing_tables:
        # outside probe 2026-11-27: with three of five tables missing, both commands exited
        # 0 and only advised an index on a table that did not exist
        print("error: the warehouse lacks the contract's table(s) "
              + ", ".join(missing_tables) + ": no nightly or weekly run can start until the "
              "MDMS provides them (docs/warehouse-contract.md; a dev or test warehouse gets "
              "all five with `vee db upgrade --with-mdm`)", file=sys.stderr)
    for index in missing:
        if f"{index.schema}.{index.table}" not in missing_tables:
            print(f"warning: {index.warning()}", file=sys.stderr)
    grants = missing_grants(engine)
    if grants:
        # outside probe 2026-11-29: the advice was "`vee db upgrade` as the owner of schema
        # mdm", a role that may not touch schema vee in production, and the exit code was 0
        print("error: the roles' privileges are not what the runs need (a run as a login "
              "lacking one fails; one a role must not have weakens least privilege): "
              + "; ".join(grants) + ". `vee db upgrade` sets them where its login may; "
              "otherwise each object's owner runs them (the database's owner for TEMPORARY, "
              "the migrator for schema vee, the MDMS's DBA for schema mdm): "
              + " ".join(grant_statements(grants)) + " (docs/security.md)", file=sys.stderr)
    return bool(missing_tables or grants)


def cmd_db_status(args) -> int:
    from vee_tasks import migrations
    from vee_tasks.warehouse import describe_target

    engine = _engine()
    print(f"warehouse {describe_target(engine.url.render_as_string(hide_password=True))}")
    for track, version, name in migrations.applied(engine):
        print(f"  {track}/{version}_{name}")
    # not ready while a migration of this release is missing (the DAGs' tasks refuse such
    # a warehouse; upgrade probe, 2026-11-29: exit 0 before `vee db upgrade`), nor while
    # contract tables or the roles' privileges on them are: a script checking readiness sees it
    pending = migrations.not_applied(engine, ["vee"])
    for name in pending:
        print(f"  {name}: not applied")
    if pending:
        print(f"error: {len(pending)} migration(s) of this release not applied: the DAGs' tasks "
              "refuse the warehouse until the owner of schema vee runs `vee db upgrade`",
              file=sys.stderr)
    problems = _print_warehouse_problems(engine)
    return 1 if pending or problems else 0


def cmd_db_stop_embedded(args) -> int:
    """Stop the demo's embedded PostgreSQL (under VEE_DATA_DIR), if it runs."""
    from vee_tasks.config import get_settings
    from vee_tasks.warehouse import stop_embedded_postgres

    pgdata = get_settings().embedded_pg_dir
    stopped = stop_embedded_postgres(pgdata)
    print(f"embedded PostgreSQL at {pgdata}: " + ("stopped" if stopped else "not running"))
    return 0


def cmd_db_url(args) -> int:
    """Print the warehouse URL for psql, without its password (give it as PGPASSWORD)."""
    import sqlalchemy as sa

    from vee_tasks.config import SECRET_QUERY_KEYS
    from vee_tasks.warehouse import get_engine

    url = get_engine().url
    bare = sa.engine.URL.create(
        "postgresql", username=url.username, host=url.host, port=url.port,
        database=url.database,
        # sslpassword and password may ride in the query too: like the password, left out
        query={k: v for k, v in url.query.items() if k.lower() not in SECRET_QUERY_KEYS},
    )
    print(bare.render_as_string(hide_password=False))
    return 0


def cmd_simulate(args) -> int:
    from vee_tasks.simulator import SimulationConfig, simulate

    config = SimulationConfig(
        meters=args.meters, days=args.days, start=args.start, seed=args.seed
    )
    try:
        config.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    engine = _engine(upgrade=True, with_mdm=True)
    try:
        summary = simulate(engine, config, replace=not args.append, progress=True)
    except ValueError as exc:  # e.g. --append with a seed already loaded: nothing written
        raise UsageError(str(exc)) from None
    print(summary.describe())
    return 0


def cmd_train(args) -> int:
    from vee_tasks.training.pipeline import train

    from vee_tasks.dates import today_in

    today = today_in(get_settings().timezone)
    if args.as_of is not None and args.as_of > today + dt.timedelta(days=1):
        # the version would be tagged as of that date, and no weekly run before it could
        # promote over it (review, 2026-11-29: a typo froze promotion for a year)
        raise UsageError(f"--as-of {args.as_of} is after tomorrow ({today} is today in "
                         f"{get_settings().timezone}): a model trained as of a future date "
                         "would hold back every weekly promotion until then")
    engine = _engine(upgrade=True)
    as_of = args.as_of or today
    result = train(engine, as_of=as_of, progress=True, run_id=args.run_id)
    print(result.describe())
    return 0


def cmd_score(args) -> int:
    from vee_tasks.scoring.pipeline import score_read_date

    engine = _engine(upgrade=True)
    run = score_read_date(engine, args.read_date, run_id=args.run_id)
    print(run.describe())
    return 0


def cmd_demo(args) -> int:
    from vee_tasks.demo import run_demo

    return run_demo(meters=args.meters, days=args.days, seed=args.seed)


def cmd_reports(args) -> int:
    from vee_tasks.reports import list_reports

    for line in list_reports(get_settings()):
        print(line)
    return 0


def cmd_ui(args) -> int:
    from vee_tasks.airflow_runtime import run_ui

    return run_ui(port=args.port)


def cmd_bench(args) -> int:
    if args.backfill:
        from vee_tasks.bench_backfill import backfill_config, run_backfill_bench

        defaults = backfill_config()
        config = backfill_config(
            meters=args.meters or defaults.meters,
            exceptions_per_day=args.exceptions or defaults.exceptions,
            days=args.days,
            last_date=args.read_date or defaults.read_date,
            database=args.database or defaults.database,
            rebuild=args.rebuild,
        )
        if config.meters < 1 or config.exceptions < 1 or config.exception_days < 1:
            raise UsageError("--meters, --exceptions and --days must be positive")
        report = run_backfill_bench(config, max_active_runs=args.max_active_runs)
        print(report.describe())
        return 0

    from vee_tasks.bench import BenchConfig, run_bench

    defaults = BenchConfig()
    config = BenchConfig(
        meters=args.meters or defaults.meters,
        exceptions=args.exceptions or defaults.exceptions,
        read_date=args.read_date or defaults.read_date,
        rebuild=args.rebuild,
        database=args.database or defaults.database,
        shard_workers=args.shard_workers,
    )
    if config.meters < 1 or config.exceptions < 1:
        raise UsageError("--meters and --exceptions must be positive")
    report = run_bench(config)
    print(report.describe())
    return 0


def cmd_model_adopt(args) -> int:
    """Let a version trained on another warehouse score this one."""
    from vee_tasks import registry
    from vee_tasks.warehouse import warehouse_identity

    engine = _engine()
    with engine.connect() as conn:
        ours = warehouse_identity(conn)
    if ours is None:
        raise UsageError("this warehouse has no id yet: run `vee db upgrade` first")
    try:
        registry.adopt_version(args.version, ours)
        trained_on = registry.version_info(args.version).tags.get(registry.TAG_WAREHOUSE)
    except registry.RegistryError as exc:
        raise UsageError(str(exc)) from None
    print(f"version {args.version} may score warehouse {ours} (trained on "
          f"{trained_on or 'a warehouse it did not record'})")
    return 0


def cmd_model_champion(args) -> int:
    """Move alias `champion` to a version (a rollback)."""
    from vee_tasks import registry

    try:
        registry.make_champion(args.version)
    except registry.RegistryError as exc:
        raise UsageError(str(exc)) from None
    print(f"{get_settings().registered_model_name} version {args.version} is the champion: "
          "the next nightly run scores with it")
    return 0


# --- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vee", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="warehouse schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="create or migrate schema vee")
    up.add_argument(
        "--with-mdm",
        action="store_true",
        help="also create the MDMS's mdm tables (dev, test, demo, evaluation warehouses)",
    )
    up.set_defaults(func=cmd_db_upgrade)
    db_sub.add_parser("status", help="list applied migrations, and indexes and privileges "
                      "missing on the mdm tables").set_defaults(func=cmd_db_status)
    db_sub.add_parser("url", help="print the warehouse URL (no password)").set_defaults(
        func=cmd_db_url
    )
    db_sub.add_parser("stop-embedded", help="stop the demo's embedded PostgreSQL under "
                      "VEE_DATA_DIR (it keeps running after `make demo`)").set_defaults(
        func=cmd_db_stop_embedded
    )

    sim = sub.add_parser("simulate", help="fill the mdm tables with a realistic MDMS")
    sim.add_argument("--meters", type=int, default=2000)
    sim.add_argument("--days", type=int, default=120)
    sim.add_argument("--start", type=_date, default=dt.date(2026, 6, 1))
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument(
        "--append", action="store_true", help="keep existing mdm rows (default: replace them)"
    )
    sim.set_defaults(func=cmd_simulate)

    train = sub.add_parser("train", help="the weekly retraining, without a scheduler")
    train.add_argument("--as-of", type=_date, default=None,
                       help="logical date (default: today in VEE_TIMEZONE)")
    train.add_argument("--run-id", default=None,
                       help="default cli__<as-of>: running again for a date reruns that run; "
                       "another id trains and registers anew")
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="the nightly scoring of one read date, without a scheduler")
    score.add_argument("--read-date", type=_date, required=True)
    score.add_argument("--run-id", default=None,
                       help="default cli__<read-date>: running again for a date reruns that run")
    score.set_defaults(func=cmd_score)

    demo = sub.add_parser("demo", help="the whole loop on this machine")
    demo.add_argument("--meters", type=int, default=2000)
    demo.add_argument("--days", type=int, default=120)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)

    model = sub.add_parser("model", help="registered model versions")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    adopt = model_sub.add_parser(
        "adopt", help="let a version trained on another warehouse score this one (the "
        "nightly run refuses a champion trained elsewhere)")
    adopt.add_argument("version", help="the version number in the registry")
    adopt.set_defaults(func=cmd_model_adopt)
    champion = model_sub.add_parser(
        "champion", help="move alias champion to a version (roll back to an earlier model)")
    champion.add_argument("version", help="the version number in the registry")
    champion.set_defaults(func=cmd_model_champion)

    sub.add_parser("reports", help="list data-quality reports").set_defaults(func=cmd_reports)

    ui = sub.add_parser("ui", help="start the Airflow UI with the project's DAGs")
    ui.add_argument("--port", type=int, default=8080)
    ui.set_defaults(func=cmd_ui)

    bench = sub.add_parser(
        "bench",
        help="time the nightly scoring at scale against an I/O floor (or, with --backfill, "
        "a 30-day backfill through Airflow)",
    )
    bench.add_argument("--meters", type=int, help="default 200,000 (backfill: 50,000)")
    bench.add_argument(
        "--exceptions", type=int, help="on the read date, default 1,000,000 (backfill: a day, 20,000)"
    )
    bench.add_argument("--read-date", type=_date, help="default 2026-02-10 (backfill: the last, 2026-02-28)")
    bench.add_argument("--database", help="the bench's own database (vee_bench, vee_bench_backfill)")
    bench.add_argument("--rebuild", action="store_true", help="rebuild the bench warehouse")
    bench.add_argument("--shard-workers", type=int, default=2, help="shards scored at once")
    bench.add_argument(
        "--backfill", action="store_true",
        help="time `airflow backfill create` of --days read dates with the LocalExecutor",
    )
    bench.add_argument("--days", type=int, default=30, help="backfill: read dates")
    bench.add_argument(
        "--max-active-runs", type=int, default=2, help="backfill: runs at once (airflow backfill create)"
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from sqlalchemy.exc import DBAPIError

    from vee_tasks.config import SettingsError
    from vee_tasks.migrations import MigrationError
    from vee_tasks.warehouse import WarehouseNotConfigured, WarehouseUnavailable

    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except UsageError as exc:
        print(f"vee: error: {exc}", file=sys.stderr)
        return 2
    except (WarehouseUnavailable, WarehouseNotConfigured, MigrationError, SettingsError) as exc:
        print(f"vee: error: {exc}", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        if args.verbose:
            raise
        # e.g. a login without the privileges the command needs: say so in one line
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"vee: error: the warehouse refused: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # a data-quality gate, a run that may not go on, a registry without a usable model,
        # or the driver's own error from a COPY: what and where, not a traceback
        import psycopg2

        from vee_tasks.quality import DataQualityError as SuiteFailed
        from vee_tasks.registry import RegistryError
        from vee_tasks.scoring.errors import ScoringError
        from vee_tasks.training.pipeline import TrainingError

        if args.verbose:
            raise
        if isinstance(exc, psycopg2.Error):
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"vee: error: the warehouse refused: {reason}", file=sys.stderr)
            return 1
        if not isinstance(exc, (SuiteFailed, ScoringError, TrainingError, RegistryError)):
            raise
        print(f"vee: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
