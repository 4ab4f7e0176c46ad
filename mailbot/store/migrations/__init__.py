"""Versioned schema migrations (alembic), configured in code: no alembic.ini at runtime.

`upgrade` is what `mailbot migrate` runs; `check` is what every start-up runs: an empty
database gets the schema at once, one behind this code's head revision stops start-up.
New revisions: `python -m mailbot.store.migrations "what changed"` (autogenerate).

alembic (with mako and pygments, some 11 MB of the daemon's memory) is imported only to
migrate: a start-up at head reads the revisions' files and the database's alembic_version.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlmodel import SQLModel

import mailbot.store.models  # noqa: F401  (the tables, on SQLModel.metadata)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

HERE = Path(__file__).parent
# where the revisions are (alembic's default under script_location): start-up reads them here
VERSION_DIRS = [HERE / "versions"]
BASELINE = "0001"  # the schema mailbot had before migrations: what `create_all` used to make
UNVERSIONED = "none (tables made before migrations)"
_LOCK_KEY = 0x6D61696C626F74  # "mailbot": PostgreSQL advisory lock serialising migrations

log = logging.getLogger("mailbot")
# alembic says "Context impl SQLiteImpl." etc. at INFO on every start-up check: we say ourselves
logging.getLogger("alembic").setLevel(logging.WARNING)


class SchemaError(Exception):
    """The database's schema is not the one this mailbot needs (the message says what to do)."""


def config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An alembic Config for this package's scripts, on CONNECTION (or URL)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)


def head() -> str:
    """The revision this code needs: the one no other revision revises.

    Read from the revisions' own lines (`revision = "0002"`, `down_revision = "0001"`);
    anything less plain (several heads, a merge) is left to alembic to read, or refuse.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for folder in VERSION_DIRS:
        for script in folder.glob("*.py"):
            found = dict(_REVISION.findall(script.read_text(encoding="utf-8")))
            if "revision" in found:
                revisions.add(found["revision"])
                revised.add(found.get("down_revision", ""))
    heads = revisions - revised
    if len(heads) == 1:
        return heads.pop()
    revision = scripts().get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) <= 1:
        return rows[0] if rows else None
    from alembic.runtime.migration import MigrationContext  # several heads: alembic says so

    return MigrationContext.configure(connection).get_current_revision()


def _mailbot_tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) & set(SQLModel.metadata.tables)


def _behind(revision: str) -> SchemaError:
    from alembic.util import CommandError

    try:
        known = scripts().get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        return SchemaError(
            f"database is at revision {revision}, which this mailbot does not know "
            f"(made by a newer mailbot?); this mailbot needs {head()}"
        )
    return SchemaError(
        f"database is at revision {revision}, this mailbot needs {head()}: run `mailbot migrate`"
    )


def _unversioned() -> SchemaError:
    return SchemaError(
        f"database is at revision {UNVERSIONED}, this mailbot needs {head()}: run `mailbot migrate`"
    )


def unmade(engine: Engine) -> str | None:
    """For `mailbot check`, reading only: None at head; the database is empty, in words;
    SchemaError when `mailbot run` would refuse it (an older or unknown revision)."""
    with engine.connect() as connection:
        revision = current(connection)
        tables = _mailbot_tables(connection)
    if revision == head():
        return None
    if revision is not None:
        raise _behind(revision)
    if tables:
        raise _unversioned()
    return f"empty: `mailbot run` (or `mailbot migrate`) creates the schema at revision {head()}"


def check(engine: Engine) -> None:
    """At start-up: nothing to do at head; an empty database gets the schema; else SchemaError."""
    with engine.connect() as connection:
        revision = current(connection)
    if revision == head():
        return
    if revision is not None:
        raise _behind(revision)
    upgrade(engine, only_if_empty=True)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other mailbot can be migrating in at once."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # pysqlite would not BEGIN before DDL: take the write lock first, DDL and all is atomic
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def upgrade(engine: Engine, only_if_empty: bool = False) -> tuple[str | None, str]:
    """Upgrade to head: (the revision before, or None if the database was empty; head).

    A database made by mailbot before migrations (tables, no revision) is adopted as BASELINE
    when its tables match it. ONLY_IF_EMPTY (start-up) refuses to touch any existing schema.
    """
    from alembic import command

    with _migrating(engine) as connection:
        before = current(connection)
        tables = _mailbot_tables(connection)
        if only_if_empty and before == head():
            return before, head()  # another mailbot migrated it while we waited
        if only_if_empty and before is not None:
            raise _behind(before)
        if only_if_empty and tables:
            raise _unversioned()
        if before is None and tables:
            _adopt(connection)
            before = UNVERSIONED
        if before is None:
            log.info("database is empty: creating the schema at revision %s", head())
        command.upgrade(config(connection), "head")
        after = current(connection)
    assert after is not None
    return before, after


def _columns(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {
        table: {c["name"] for c in inspector.get_columns(table)}
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def _adopt(connection: Connection) -> None:
    """Stamp a pre-migrations database as BASELINE if its tables are BASELINE's."""
    from alembic import command

    scratch = create_engine("sqlite://")
    with scratch.connect() as empty:
        command.upgrade(config(empty), BASELINE)
        empty.commit()
        expected = _columns(empty)
    scratch.dispose()
    found = _columns(connection)
    wrong = sorted(t for t in expected if found.get(t) != expected[t])
    if wrong:
        raise SchemaError(
            "database has mailbot tables but no revision, and they are not those of revision "
            f"{BASELINE} (tables differing: {', '.join(wrong)}): migrate it by hand"
        )
    command.stamp(config(connection), BASELINE)
