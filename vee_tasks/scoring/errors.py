"""Failure kinds of a nightly run, and which of them are worth a retry.

Kept free of heavy imports: the DAG's task wrapper uses it to turn permanent failures into
`AirflowFailException` (no retry) and let transient database errors retry with backoff.
"""

from __future__ import annotations

import re


class ScoringError(RuntimeError):
    """A nightly run cannot go on; retrying will not help."""


class DataQualityError(ScoringError):
    """A batch-level data-quality check failed: the run stops before any write."""


class RunStateError(ScoringError):
    """The run record says a step must not run (e.g. scoring a run that failed validation)."""


class RunFinishedError(RunStateError):
    """One task of a finished run was cleared alone: refused, and the record left as it was
    (the run's other steps are not rerun with it, and its staged rows are gone)."""


def caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether `exc` or an exception it was raised from or during is a `kind` (Airflow hands
    callbacks the AirflowFailException a task's failure policy wrapped around it)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


# A login the server refused for good: the database, the role or the password is wrong, or
# pg_hba.conf has no entry for it. The server says so only in words (libpq gives no SQLSTATE
# for a failed connection), in English unless lc_messages says otherwise; a server in another
# language keeps these retried, as before. A restart ("Connection refused", "the database
# system is starting up") stays transient.
_REFUSED_LOGIN = re.compile(
    r'FATAL:\s+(?:(?:database|role) "[^"]*" does not exist'
    r'|password authentication failed|no pg_hba\.conf entry)'
)


def _refused_login(exc: BaseException) -> bool:
    return _REFUSED_LOGIN.search(str(exc)) is not None


def is_transient(exc: BaseException) -> bool:
    """True for errors of the connection or server (lost connection, restart, timeout).

    Data-quality failures, a missing champion, constraint violations, programming errors
    and a login the server refused (no such database or role, a wrong password) are
    permanent: a retry would fail the same way.
    """
    import sqlalchemy as sa

    from vee_tasks.warehouse import WarehouseUnavailable

    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, ScoringError) or _refused_login(current):
            return False
        if isinstance(current, (WarehouseUnavailable, ConnectionError, TimeoutError)):
            return True
        if isinstance(current, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
            return True
        if isinstance(current, sa.exc.DBAPIError) and current.connection_invalidated:
            return True
        try:
            import psycopg2

            if isinstance(current, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                return True
        except ImportError:  # pragma: no cover - psycopg2 is a dependency
            pass
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def short_reason(exc: BaseException) -> str:
    """What a run record's message says about an error: its type and text, but for a database
    error the server's own message, not SQLAlchemy's text with the whole statement and its
    parameters (a permission error stored 1,253 characters of SQL; outside probe 2026-11-27)."""
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.StatementError) and getattr(exc, "orig", None) is not None:
        orig = exc.orig
        text = " ".join(str(orig).strip().splitlines()[:1]) or type(orig).__name__
        return f"{type(orig).__name__}: {text}"
    return f"{type(exc).__name__}: {exc}"
