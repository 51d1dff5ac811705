"""The one place where settings are read from the environment.

Everything else asks `get_settings()`; nothing else calls `os.environ` for configuration.
Settings are plain values so that they can be logged (without secrets) and passed around.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
SQL_DIR = PROJECT_DIR / "sql"
EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
DAGS_DIR = PROJECT_DIR / "dags"

WAREHOUSE_CONN_ID = "vee_warehouse"
REGISTERED_MODEL_NAME = "vee-resolution"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
NIGHTLY_DAG_ID = "vee_nightly_scoring"
WEEKLY_DAG_ID = "vee_weekly_retraining"
# Run ids Airflow gives its DAG runs (its DagRunType values); any other run was started by
# `vee score` / `vee train` (cli__<date>, or the --run-id given).
AIRFLOW_RUN_ID_PREFIXES = ("manual__", "scheduled__", "backfill__", "asset_triggered__",
                           "asset_materialization__", "dataset_triggered__")

RULE_CODES = (
    "GAP",
    "SPIKE",
    "HIGH_USAGE",
    "LOW_USAGE",
    "ZERO_CONSUMPTION",
    "FLATLINE",
    "REVERSE_FLOW",
    "STEP_CHANGE",
)
RESOLUTION_CODES = ("ACCEPT", "ESTIMATE", "EDIT", "REREAD", "FIELD_ORDER")
CUSTOMER_CLASSES = ("RES", "COM", "IND")
METER_KINDS = ("AMI_1PH", "AMI_3PH", "CT")
QUALITY_FLAGS = ("A", "E", "S", "F", "N")
DECIDABLE_STATUSES = ("OPEN", "AUTO_RESOLVED", "PENDING_REVIEW")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def in_airflow_task() -> bool:
    """Whether this process runs an Airflow task (the task runner exports its context as
    AIRFLOW_CTX_* variables); read at each call, since one process may run both."""
    return bool(_env("AIRFLOW_CTX_DAG_ID"))


def _default_data_dir() -> Path:
    # A checkout keeps its state beside the code (var/ is git-ignored); an installed package
    # (the Docker image) uses the user's data directory.
    if (PROJECT_DIR / "pyproject.toml").exists():
        return PROJECT_DIR / "var"
    return Path.home() / ".local" / "share" / "vee"


# Keys of a connection's extra that are the Airflow Postgres provider's own, not libpq's: the
# provider drops them before connecting (PostgresHook.ignored_extra_options, plus its log
# switch), and so does this system. Every other key goes to libpq, as the provider passes it:
# a libpq option (sslmode, sslrootcert, require_auth, target_session_attrs...) is kept, and a
# misspelt one is refused by libpq at connect time rather than dropped in silence (a silent
# drop of "sslmod" connected without the TLS checks it asked for).
PROVIDER_EXTRA_KEYS = frozenset({
    "iam", "redshift", "redshift-serverless", "cursor", "cluster-identifier", "workgroup-name",
    "aws_conn_id", "sqlalchemy_scheme", "sqlalchemy_query", "azure_conn_id",
    "enable_log_db_messages",
    # DbApiHook's (the provider's base class)
    "placeholder", "escape_word_format", "escape_column_names", "insert_statement_format",
    "replace_statement_format",
})


def _libpq_options(extra: dict) -> dict[str, str]:
    """A connection extra's libpq options as URL query values: the provider's keys and
    structured values (a dict, a list) left out, a boolean as libpq's 1 or 0."""
    return {
        key: str(int(value)) if isinstance(value, bool) else str(value)
        for key, value in extra.items()
        if key not in PROVIDER_EXTRA_KEYS and isinstance(value, (str, int, float, bool))
    }


def _extra_dict(extra) -> dict:
    """An Airflow extra (a dict, or the JSON text of one) as a dict; an unreadable one is no
    options, as Airflow reads it."""
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except json.JSONDecodeError:
            extra = {}
    return extra if isinstance(extra, dict) else {}


def airflow_uri_to_sqlalchemy(uri: str) -> str:
    """Turn an Airflow connection URI (postgres:// or postgresql://) into a SQLAlchemy URL.

    The extra's libpq options are kept (as query parameters, or inside Airflow's `__extra__`
    JSON), the Postgres provider's own keys dropped (PROVIDER_EXTRA_KEYS).
    """
    if uri.lstrip().startswith("{"):
        from sqlalchemy.engine import URL

        spec = json.loads(uri)
        extra = _extra_dict(spec.get("extra"))  # Airflow accepts a dict or a JSON string
        host = spec.get("host") or "localhost"
        query = _libpq_options(extra)
        if host.startswith("/"):  # a socket directory: libpq's host option, no URL host
            query.setdefault("host", host)
            host = None
        # URL.create quotes what the URL syntax reserves: a password with @ / : # ? in it
        # otherwise named another host or database. The extra's plain values are libpq
        # options (sslmode, sslrootcert, connect_timeout...): dropping them connected
        # without the TLS checks they asked for.
        return URL.create(
            "postgresql+psycopg2",
            username=spec.get("login") or None,
            password=spec.get("password") or None,
            host=host,
            port=int(spec.get("port") or 5432),
            database=spec.get("schema") or "postgres",
            query=query,
        ).render_as_string(hide_password=False)
    from sqlalchemy.engine import URL

    parts = urlsplit(uri.strip())
    scheme = parts.scheme.split("+")[0]
    if scheme not in ("postgres", "postgresql"):
        raise SettingsError(f"the warehouse must be PostgreSQL, got a {scheme!r} URL")
    # Read as Airflow reads a connection URI (urlsplit, then unquote each part), rebuilt with
    # URL.create: a password with a raw "@" (u:p@ss@host) is "p@ss" to Airflow, while
    # SQLAlchemy's own parser cut it at the first "@", took the rest for the host and quoted
    # it in "did not answer" errors (outside review, 2026-11-28).
    if ("@" not in parts.netloc and "@" in parts.path + parts.fragment) or re.match(
            r"[^/?#]*[?#].*@", uri.strip().split("://", 1)[-1], re.S):
        # u:ab/cd@host: the user part holds a raw "/" (or "#"), which ends the host part for
        # Airflow too; u:ab?cd@host, a raw "?" before the first "/" with an "@" anywhere
        # after it, made the password's tail a host or an option name that libpq's refusal
        # quoted (outside reviews, 2026-11-29). Said without the URL, whose pieces would
        # show the password. (An "@" in an option's value after the database,
        # /db?application_name=etl@box, is legitimate; Airflow's get_uri() always writes
        # the "/" before its options. Without a database, percent-encode it: %40.)
        raise SettingsError(_RESERVED_IN_LOGIN)
    try:
        port = parts.port
    except ValueError:
        raise SettingsError("the warehouse URL's port is not a number") from None
    query: dict[str, str | tuple[str, ...]] = {}
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    extra = [value for key, value in pairs if key == "__extra__"]
    if extra:
        # Airflow's get_uri() writes the whole extra as one JSON value once any of its
        # values is not a string: its libpq options (sslmode, sslrootcert...) were dropped
        # with it, and a stored connection asking for verify-full connected without
        # checking the server (outside review, 2026-11-29). As Airflow reads such a URI,
        # the JSON is the whole extra: a plain parameter beside it is not read (one could
        # otherwise turn verify-full into disable).
        query.update(_libpq_options(_extra_dict(extra[-1])))
        pairs = []
    for key, value in pairs:
        if key.startswith("__extra__") or key in PROVIDER_EXTRA_KEYS:
            continue
        # a repeated key stays repeated: libpq's host=pg1&host=pg2 (failover) kept both
        query[key] = (*_as_tuple(query[key]), value) if key in query else value
    host = unquote(parts.hostname) if parts.hostname else None
    if host and host.startswith("/"):  # Airflow's %2Fvar%2Frun%2Fpostgresql: a socket directory
        query.setdefault("host", host)
        host = None
    return URL.create(
        "postgresql+psycopg2",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=host,
        port=port,
        database=unquote(parts.path[1:]) if parts.path[1:] else None,
        query=query,
    ).render_as_string(hide_password=False)


_RESERVED_IN_LOGIN = (
    "the warehouse URL cannot be read: its user or password holds a raw '/', '?', '#' or "
    "'@' (percent-encode them: %2F, %3F, %23, %40)"
)


def _as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def sqlalchemy_url_for_warehouse(url: str) -> str:
    """VEE_WAREHOUSE_URL, a SQLAlchemy URL, read by SQLAlchemy's parser (a raw "/" in its
    password is fine there), for this project's driver. A raw "@" in the password, which
    that parser cuts at, is refused rather than read as part of the host: the host then
    quoted the password's tail in errors."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError):
        raise SettingsError("VEE_WAREHOUSE_URL is not a URL (dialect://user:password@host/db)") from None
    if parsed.get_backend_name() not in ("postgres", "postgresql"):
        raise SettingsError(f"the warehouse must be PostgreSQL, got a {parsed.get_backend_name()!r} URL")
    if "@" in (parsed.host or ""):
        raise SettingsError(_RESERVED_IN_LOGIN)
    query = {k: v for k, v in parsed.query.items() if not k.startswith("__extra__")}
    return parsed.set(drivername="postgresql+psycopg2", query=query).render_as_string(
        hide_password=False)


# Query parameters whose value is a secret (libpq's password and sslpassword; an HTTP
# token): masked wherever a URL is shown.
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "token", "access_token", "api_key"})


def redact_url(url: str) -> str:
    """The URL without its password, in the user part or in the query, for logs and error
    messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a URL that does not parse)"
    shown = url  # edited in place: urlunsplit would drop the "//" of sqlite:////path
    if password:
        user_part, _, host_part = parts.netloc.rpartition("@")
        shown = shown.replace(parts.netloc, f"{user_part.split(':', 1)[0]}:***@{host_part}", 1)
    if parts.query:
        query = "&".join(
            f"{pair.split('=', 1)[0]}=***"
            if pair.split("=", 1)[0].lower() in SECRET_QUERY_KEYS else pair
            for pair in parts.query.split("&")
        )
        shown = shown.replace(f"?{parts.query}", f"?{query}", 1)
    return shown


@dataclass(frozen=True)
class Settings:
    """Typed configuration of the whole system (README, 'Pointing it at real servers', lists
    the main settings; each field's environment variable is in load_settings)."""

    data_dir: Path
    timezone: str = "America/Toronto"
    # Explicit warehouse URL (AIRFLOW_CONN_VEE_WAREHOUSE or VEE_WAREHOUSE_URL); None means
    # "ask Airflow's connection store, else start the embedded PostgreSQL".
    warehouse_url: str | None = field(default=None, repr=False)  # may carry a password
    # the variable warehouse_url came from (AIRFLOW_CONN_VEE_WAREHOUSE beats VEE_WAREHOUSE_URL)
    warehouse_url_source: str | None = None
    mlflow_tracking_uri: str | None = field(default=None, repr=False)  # (a database URI may)
    mlflow_registry_uri: str | None = field(default=None, repr=False)
    registered_model_name: str = REGISTERED_MODEL_NAME
    # Decisions
    target_precision: float = 0.98
    # The codes a confident prediction may apply without an analyst. The others always go to
    # review with the recommendation, whatever the model's threshold: e.g. leave FIELD_ORDER
    # out where a truck roll needs a person's say, or EDIT where edits must be signed.
    auto_apply_codes: tuple[str, ...] = RESOLUTION_CODES
    # The share of would-be auto-applied decisions sent to the analysts instead, drawn by
    # exception id (a rerun draws the same rows): live auto-apply precision is measured on
    # them (summary page), and the easy cases keep reaching the training labels, which only
    # analysts' resolutions make. Off by default (every confident decision is applied, as
    # the service promises); docs/nightly-scoring.md recommends 0.02-0.05 once live.
    audit_share: float = 0.0
    promotion_margin: float = 0.005
    # ...and by this many standard errors of the gain (paired bootstrap on the holdout): a
    # gain within the holdout's noise is no win (ML review, 2026-11-27: a model no better
    # than the champion passed a 0.005 margin about a third of the time)
    promotion_se_multiple: float = 1.0
    max_recall_drop: float = 0.05
    holdout_days: int = 21
    # Weekly training: minimum labels, time-ordered calibration slice before the holdout,
    # label lookback, smallest holdout support for a per-class threshold, candidate sizes
    min_training_labels: int = 200
    # labels with a resolution code outside the contract's: left out up to this share of
    # them, beyond it the run stops (a systematic problem, not a few bad rows)
    max_invalid_label_share: float = 0.01
    calibration_days: int = 14
    training_lookback_days: int = 365
    # the train slice's largest size: beyond it a fixed sample of the labels (by id) is
    # trained on. A year of a large utility's labels (1 M) took 5-7 GB per candidate, and the
    # two candidates train at once; the calibration and holdout slices are never sampled
    max_training_rows: int = 300_000
    threshold_min_support: int = 30
    keras_epochs: int = 40
    hgb_max_iter: int = 200
    # a candidate above this expected calibration error is chosen only if all are, or if the
    # best one within it has a macro-F1 lower by more than max_calibration_f1_cost
    max_calibration_error: float = 0.05
    max_calibration_f1_cost: float = 0.02
    # the training set's data-quality gate: no resolution code above this share of the labels
    # (a label feed stuck on one code is broken; a queue that is mostly ESTIMATE is not)
    max_class_share: float = 0.95
    # Nightly scoring
    # A scheduled run for read date D starts this long after D ended (local midnight): the
    # MDMS's own VEE batch raises D's exceptions in the early hours of D + 1. Runs started by
    # an operator (dags test, backfill, trigger) start at once.
    nightly_start_delay_hours: float = 6.0
    shard_count: int = 4
    # a shard per this many decidable exceptions, up to shard_count (a shard task pays a
    # process start and a model load: 20,000 rows do not need four)
    shard_min_rows: int = 25_000
    max_quarantine_share: float = 0.2
    # ...counted only from this many failed rows: a handful of bad rows on a quiet day is a
    # row problem (quarantined), not a sign that the whole batch is broken
    quarantine_share_min_rows: int = 25
    min_volume_ratio: float = 0.2
    max_volume_ratio: float = 5.0
    volume_lookback_days: int = 14
    # the volume check runs only with at least this many earlier days that had exceptions
    volume_min_history_days: int = 7
    # exceptions scored per chunk inside a shard (bounds a shard's memory: its ids, features
    # and decisions come and go a chunk at a time). On the bench,
    # 25,000 against 50,000: features ~10 % faster (44.5-50.7 s against 54.9-58.0 s over a
    # million exceptions), half the kernel time zeroing fresh pages for the chunk's arrays.
    scoring_chunk_rows: int = 25_000
    report_retention_days: int = 90
    # A weekly training run's working files (labels, training frame, candidates; ~100 MB at
    # 300,000 labels) are deleted by a later run after this many days: the registry keeps
    # what a version needs
    training_run_retention_days: int = 30
    # The longest one task of either DAG may run: a hung query fails it (and it retries)
    # instead of holding its run, and with it the next runs (one at a time), for good
    task_timeout_hours: float = 6.0
    # Alerting: webhook URL and/or SMTP recipients
    alert_webhook_url: str | None = field(default=None, repr=False)  # may carry a token
    alert_email: str | None = None
    # Email goes through this Airflow SMTP connection (host, port, login, TLS live there)
    alert_smtp_conn_id: str = "smtp_default"
    alert_email_from: str = "vee-alerts@localhost"
    alert_timeout_seconds: float = 10.0
    # Airflow UI (`vee ui`): bind address, and the admin password (else generated once into
    # a 0600 file under the Airflow home)
    ui_host: str = "127.0.0.1"
    ui_admin_password: str | None = field(default=None, repr=False)
    # Name of this Celery worker (VEE_WORKER_NAME); recorded as the task instances' hostname
    # when several workers share one machine (vee_tasks.celery_runtime.worker_hostname)
    worker_name: str | None = None

    @property
    def embedded_pg_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def airflow_home(self) -> Path:
        return self.data_dir / "airflow"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def tracking_uri_shown(self) -> str:
        """The tracking URI for messages and logs: without its password."""
        return redact_url(self.tracking_uri)

    @property
    def artifact_location(self) -> str:
        return (self.mlflow_dir / "artifacts").as_uri()

    def with_overrides(self, **changes) -> "Settings":
        return replace(self, **changes)


class SettingsError(ValueError):
    """A setting's value is unusable: named, with what it should be (the `vee` command line
    prints it as one line)."""


def _float(name: str, default: float) -> float:
    value = _env(name)
    try:
        return float(value) if value is not None else default
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number") from None


def _int(name: str, default: int) -> int:
    value = _env(name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number") from None


def _positive(value, name: str):
    if not value > 0:
        raise SettingsError(f"{name}={value!r} must be above 0")
    return value


def _share(name: str, default: float) -> float:
    value = _float(name, default)
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{name}={value!r} must be a share between 0 and 1")
    return value


def _timezone(name: str, default: str) -> str:
    """An IANA zone name; a wrong one fails here, naming the setting, rather than later in
    date arithmetic far from the cause. (In Airflow the DAG then fails to parse: this message
    is in its import error, though `dags test` ends with "could not be found".)"""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = _env(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, "America"
        raise SettingsError(f"{name}={value!r} is not a time zone name (e.g. America/Toronto, "
                         "Europe/Berlin, Australia/Sydney)") from None
    return value


def _codes(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of resolution codes; unset or empty: the default; "none": no
    code at all."""
    value = _env(name)  # unset or empty: the default, as for every setting
    if value is None or not value.strip():
        return default
    codes = tuple(c.strip().upper() for c in value.split(",") if c.strip())
    if codes == ("NONE",):
        return ()
    unknown = sorted(set(codes) - set(RESOLUTION_CODES))
    if unknown:
        raise SettingsError(f"{name}: unknown resolution code(s) {', '.join(unknown)}; "
                         f"known: {', '.join(RESOLUTION_CODES)}")
    return tuple(c for c in RESOLUTION_CODES if c in codes)


def load_settings() -> Settings:
    """Read the environment once. Names are listed in the README."""
    conn = _env("AIRFLOW_CONN_VEE_WAREHOUSE")
    url = _env("VEE_WAREHOUSE_URL")
    warehouse_url = airflow_uri_to_sqlalchemy(conn) if conn else (
        sqlalchemy_url_for_warehouse(url) if url else None
    )
    return Settings(
        data_dir=Path(_env("VEE_DATA_DIR") or _default_data_dir()).resolve(),
        timezone=_timezone("VEE_TIMEZONE", "America/Toronto"),
        warehouse_url=warehouse_url,
        warehouse_url_source=("AIRFLOW_CONN_VEE_WAREHOUSE" if conn
                              else "VEE_WAREHOUSE_URL" if url else None),
        mlflow_tracking_uri=_env("MLFLOW_TRACKING_URI"),
        mlflow_registry_uri=_env("MLFLOW_REGISTRY_URI"),
        target_precision=_float("VEE_TARGET_PRECISION", 0.98),
        auto_apply_codes=_codes("VEE_AUTO_APPLY_CODES", RESOLUTION_CODES),
        audit_share=_share("VEE_AUDIT_SHARE", 0.0),
        promotion_margin=_float("VEE_PROMOTION_MARGIN", 0.005),
        promotion_se_multiple=_float("VEE_PROMOTION_SE_MULTIPLE", 1.0),
        max_recall_drop=_float("VEE_MAX_RECALL_DROP", 0.05),
        holdout_days=_int("VEE_HOLDOUT_DAYS", 21),
        min_training_labels=_int("VEE_MIN_TRAINING_LABELS", 200),
        max_invalid_label_share=_share("VEE_MAX_INVALID_LABEL_SHARE", 0.01),
        calibration_days=_int("VEE_CALIBRATION_DAYS", 14),
        training_lookback_days=_int("VEE_TRAINING_LOOKBACK_DAYS", 365),
        max_training_rows=_positive(_int("VEE_MAX_TRAINING_ROWS", 300_000), "VEE_MAX_TRAINING_ROWS"),
        threshold_min_support=_int("VEE_THRESHOLD_MIN_SUPPORT", 30),
        keras_epochs=_int("VEE_KERAS_EPOCHS", 40),
        hgb_max_iter=_int("VEE_HGB_MAX_ITER", 200),
        max_calibration_error=_float("VEE_MAX_CALIBRATION_ERROR", 0.05),
        max_calibration_f1_cost=_float("VEE_MAX_CALIBRATION_F1_COST", 0.02),
        max_class_share=_float("VEE_MAX_CLASS_SHARE", 0.95),
        nightly_start_delay_hours=_float("VEE_NIGHTLY_START_DELAY_HOURS", 6.0),
        shard_count=_int("VEE_SHARD_COUNT", 4),
        shard_min_rows=_int("VEE_SHARD_MIN_ROWS", 25_000),
        max_quarantine_share=_float("VEE_MAX_QUARANTINE_SHARE", 0.2),
        quarantine_share_min_rows=_int("VEE_QUARANTINE_SHARE_MIN_ROWS", 25),
        min_volume_ratio=_float("VEE_MIN_VOLUME_RATIO", 0.2),
        max_volume_ratio=_float("VEE_MAX_VOLUME_RATIO", 5.0),
        volume_lookback_days=_int("VEE_VOLUME_LOOKBACK_DAYS", 14),
        volume_min_history_days=_int("VEE_VOLUME_MIN_HISTORY_DAYS", 7),
        scoring_chunk_rows=_int("VEE_SCORING_CHUNK_ROWS", 25_000),
        report_retention_days=_int("VEE_REPORT_RETENTION_DAYS", 90),
        training_run_retention_days=_positive(_int("VEE_TRAINING_RUN_RETENTION_DAYS", 30),
                                              "VEE_TRAINING_RUN_RETENTION_DAYS"),
        task_timeout_hours=_positive(_float("VEE_TASK_TIMEOUT_HOURS", 6.0), "VEE_TASK_TIMEOUT_HOURS"),
        alert_webhook_url=_env("VEE_ALERT_WEBHOOK_URL"),
        alert_email=_env("VEE_ALERT_EMAIL"),
        alert_smtp_conn_id=_env("VEE_ALERT_SMTP_CONN_ID", "smtp_default"),
        alert_email_from=_env("VEE_ALERT_EMAIL_FROM", "vee-alerts@localhost"),
        alert_timeout_seconds=_float("VEE_ALERT_TIMEOUT_SECONDS", 10.0),
        ui_host=_env("VEE_UI_HOST", "127.0.0.1"),
        ui_admin_password=_env("VEE_UI_ADMIN_PASSWORD"),
        worker_name=_env("VEE_WORKER_NAME"),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    """For tests and CLIs that change the environment after import."""
    get_settings.cache_clear()
