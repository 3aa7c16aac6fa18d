"""What a failed store call means, by the driver's exception types and result codes."""

from __future__ import annotations

import sqlite3

import psycopg
import psycopg.errors
import pytest
from psycopg_pool import PoolTimeout

from trellis_actors.errors import InvalidTransition, TaskNotFound
from trellis_actors.runtime.store_failures import Failure, classify


def sqlite_error(statement: str, *params: object, limit_pages: bool = False) -> sqlite3.Error:
    """The error SQLite itself raises for ``statement`` on a fresh in-memory database."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT NOT NULL)")
    conn.execute("INSERT INTO t VALUES (1, 'one')")
    if limit_pages:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
    try:
        conn.execute(statement, params)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{statement!r} did not fail")


class TestSqlite:
    def test_disk_full_is_an_outage(self) -> None:
        """SQLITE_FULL ("database or disk is full"): an outage."""
        error = sqlite_error("INSERT INTO t (x) VALUES (?)", "x" * 100_000, limit_pages=True)
        assert error.sqlite_errorname == "SQLITE_FULL"
        assert classify(error) is Failure.OUTAGE

    def test_busy_and_io_errors_are_outages(self) -> None:
        """Locked, I/O error, corrupt: outages, whatever the extended code."""
        for code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_IOERR_WRITE, sqlite3.SQLITE_CORRUPT):
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = code
            assert classify(error) is Failure.OUTAGE, code

    def test_without_a_code_the_type_decides(self) -> None:
        """An OperationalError or plain DatabaseError with no result code: an outage."""
        assert classify(sqlite3.OperationalError("disk I/O error")) is Failure.OUTAGE
        assert classify(sqlite3.DatabaseError("file is not a database")) is Failure.OUTAGE
        assert classify(sqlite3.ProgrammingError("closed")) is Failure.FAULT

    def test_constraint_is_bad_data(self) -> None:
        """A constraint the row breaks: the data's fault."""
        error = sqlite_error("INSERT INTO t VALUES (1, 'again')")
        assert isinstance(error, sqlite3.IntegrityError)
        assert classify(error) is Failure.BAD_DATA

    def test_sql_error_is_a_fault(self) -> None:
        """A syntax error or a missing table (SQLITE_ERROR): our bug, not an outage."""
        assert classify(sqlite_error("SELEC 1")) is Failure.FAULT
        assert classify(sqlite_error("SELECT * FROM nowhere")) is Failure.FAULT


class TestPostgres:
    @pytest.mark.parametrize(
        "error",
        [
            psycopg.OperationalError("connection failed: Connection refused"),
            psycopg.errors.AdminShutdown("terminating connection"),
            psycopg.errors.DiskFull("could not extend file"),
            psycopg.errors.CannotConnectNow("the database system is starting up"),
            psycopg.InterfaceError("the connection is closed"),
            PoolTimeout("couldn't get a connection after 5.00 sec"),
        ],
        ids=type,
    )
    def test_outages(self, error: Exception) -> None:
        """Lost or refused connections, shutdowns, a full disk, the pool's timeout."""
        assert classify(error) is Failure.OUTAGE

    @pytest.mark.parametrize(
        "error",
        [
            psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
            psycopg.errors.NumericValueOutOfRange("integer out of range"),
            psycopg.errors.UniqueViolation("duplicate key"),
            psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum"),
        ],
        ids=type,
    )
    def test_bad_data(self, error: Exception) -> None:
        """Values the server refuses, rows too big: the data's fault, though psycopg files
        "program limit exceeded" under OperationalError."""
        assert classify(error) is Failure.BAD_DATA

    def test_sql_error_is_a_fault(self) -> None:
        """Bad SQL is our bug."""
        assert classify(psycopg.errors.SyntaxError("syntax error")) is Failure.FAULT


class TestOthers:
    def test_trellis_errors_are_the_answer(self) -> None:
        """A Trellis error (no such task, a move the table refuses) answers the request."""
        assert classify(TaskNotFound("x")) is Failure.REFUSED
        assert classify(InvalidTransition("x")) is Failure.REFUSED

    def test_values_a_driver_cannot_take(self) -> None:
        """An integer beyond 64 bits, a lone surrogate, JSON nested too deep."""
        assert classify(OverflowError("Python int too large")) is Failure.BAD_DATA
        surrogate = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        assert classify(surrogate) is Failure.BAD_DATA
        assert classify(RecursionError("maximum recursion depth")) is Failure.BAD_DATA

    def test_bugs_are_faults(self) -> None:
        """AssertionError, TypeError, KeyError: our code's, for supervision to handle."""
        for error in (AssertionError("x"), TypeError("x"), KeyError("x")):
            assert classify(error) is Failure.FAULT
