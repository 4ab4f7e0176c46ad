"""The database seen from outside store/: its failures by name, its URL as it may be shown."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session

# anything the database, or mailbot's way of reaching it, raised
DatabaseError = SQLAlchemyError
# the database failed the statement: unreachable, locked, out of space (not the data's fault)
DatabaseFailed = OperationalError


def shown_url(url: str) -> str:
    """The database URL as it may be printed: its password masked."""
    return make_url(url).render_as_string(hide_password=True)


def conflict(error: Exception) -> bool:
    """Another writer took the same row first (a unique key): the work is tried once more."""
    return isinstance(error, IntegrityError)


def database_fault(error: Exception) -> bool:
    """The database failed (unreachable, locked, refusing): not the message's fault."""
    return isinstance(error, DBAPIError) and not isinstance(error, IntegrityError)


def claimed_once(session: Session, work: Callable[[], int]) -> int:
    """WORK's count, committed in SESSION, where WORK claims a row first (a weekly digest, a
    held list): 0 if another writer's claim of it was committed first (a conflict)."""
    try:
        done = work()
        session.commit()
        return done
    except Exception as error:
        if not conflict(error):
            raise
        session.rollback()  # another daemon's claim, committed while this one was writing
        return 0
