"""Helpers of the robustness tests (privileges, faults): copies of a warehouse database and
login roles granted one of the project's group roles."""

from __future__ import annotations

import secrets
import uuid

import sqlalchemy as sa


def clone_database(databases, source_url: str, label: str) -> str:
    """A copy (CREATE DATABASE ... TEMPLATE) of a session database of this test run.

    The source may have no other connection meanwhile: this session's idle pooled ones are
    closed first (the source belongs to this pytest session, so nobody else's are).
    """
    from vee_tasks.warehouse import dispose_engines

    dispose_engines()
    source = sa.engine.make_url(source_url).database
    target = databases.create(label)
    name = sa.engine.make_url(target).database
    with databases.admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": source},
        )
        conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return target


class LoginRole:
    """A login role with a random password, granted one group role; `drop()` removes it."""

    def __init__(self, admin_url: str, group: str):
        self.name = f"vee_t_{group}_{uuid.uuid4().hex[:8]}"
        self.password = "pw-" + secrets.token_hex(12)
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            # Identifiers and a generated password: no bound parameters in CREATE ROLE.
            conn.exec_driver_sql(
                f"CREATE ROLE {self.name} LOGIN PASSWORD '{self.password}' IN ROLE {group}"
            )
        self.url = (
            sa.engine.make_url(admin_url)
            .set(username=self.name, password=self.password)
            .render_as_string(hide_password=False)
        )

    @property
    def libpq_url(self) -> str:
        return self.url.replace("postgresql+psycopg2://", "postgresql://", 1)

    def engine(self, **kwargs):
        return sa.create_engine(self.url, **kwargs)

    def drop(self) -> None:
        from vee_tasks.warehouse import dispose_engines

        dispose_engines()
        with self.admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :u"),
                {"u": self.name},
            )
            # Anything the login created in its database (none expected) would block DROP ROLE.
            conn.exec_driver_sql(f"DROP OWNED BY {self.name}")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {self.name}")
        self.admin.dispose()
