"""The alembic environment: run by `mailbot migrate` (and at start-up on an empty database)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection, Enum, create_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from mailbot.store.models import UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Revisions name plain SQLAlchemy types: they must not change when the models do."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, Enum) and not obj.native_enum:
        return f"sa.String(length={obj.length})"
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: autogenerate batch operations
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
elif isinstance(given, Connection):
    _run(given)
else:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "no sqlalchemy.url and no connection given"
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()
