"""broker.runtime.transient: a PostgreSQL that is shutting down, starting up or cut off is waited out; an error of
the record's own (a constraint, bad data) is not, so that record is set aside."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError

from broker.runtime import transient


def _dbapi_error(cause: Exception, *, invalidated: bool = False) -> DBAPIError:
    """The error SQLAlchemy's asyncpg dialect raises for ``cause`` (on connect, no connection is invalidated)."""
    adapted = AsyncAdapt_asyncpg_dbapi.Error(str(cause), cause)
    return DBAPIError(None, None, adapted, connection_invalidated=invalidated)


@pytest.mark.parametrize("cause", [
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
], ids=lambda cause: type(cause).__name__)
def test_an_unavailable_postgresql_is_transient(cause: Exception) -> None:
    assert transient(_dbapi_error(cause))


def test_an_invalidated_connection_is_transient() -> None:
    assert transient(_dbapi_error(RuntimeError("connection was closed in the middle of operation"), invalidated=True))


@pytest.mark.parametrize("cause", [
    asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax for type uuid"),
    RuntimeError("no SQLSTATE at all"),
], ids=lambda cause: type(cause).__name__)
def test_an_error_of_the_record_itself_is_not_transient(cause: Exception) -> None:
    assert not transient(_dbapi_error(cause))


@pytest.mark.parametrize("cause", [
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    ConnectionRefusedError(111, "Connection refused"),
], ids=lambda cause: type(cause).__name__)
def test_the_raw_pools_own_errors_of_an_unavailable_postgresql_are_transient(cause: Exception) -> None:
    """``db.raw_pool`` raises asyncpg's errors as they are, not wrapped by SQLAlchemy."""
    assert transient(cause)


@pytest.mark.parametrize("cause", [
    asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax for type uuid"),
    asyncpg.exceptions._base.DataError("invalid input for query argument $1: 'x' (an integer is required)"),
], ids=lambda cause: type(cause).__name__)
def test_the_raw_pools_errors_of_the_record_itself_are_not_transient(cause: Exception) -> None:
    assert not transient(cause)
