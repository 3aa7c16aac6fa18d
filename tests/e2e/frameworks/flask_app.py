"""A Flask + SQLAlchemy shop whose orders are shipped by a Trellis node.

``create_app(trellis_url, database_url=..., sqlite_path=...)`` makes the app; one
``trellis_actors.client.Client`` is made with it and closed by ``close_app``. Routes:

* ``POST /orders-client``: submit ``ship_order`` over HTTP with the client (no order row);
* ``POST /orders``: insert the order row and enqueue ``ship_order`` in the same SQLAlchemy
  transaction (``trellis_actors.postgres.enqueue``); ``?fail=1`` raises after the enqueue,
  so the transaction rolls back; ``?gift=fail`` also enqueues a gift-wrap task in a
  SAVEPOINT that rolls back, and the order commits without it;
* ``POST /orders-sqlite``: enqueue with ``trellis_actors.sqlite.enqueue`` into a SQLite
  node's file.

Each answers ``202 {"task_id": ...}``, or ``400 {"field": ..., "message": ...}`` for a
payload that breaks ``ship_order``'s contract.
"""

from __future__ import annotations

from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request
from sqlalchemy import String, create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from tests.e2e.frameworks.tasks import ship_order

from trellis_actors import ValidationError, postgres, sqlite
from trellis_actors.client import Client


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    item: Mapped[str]
    quantity: Mapped[int]


class FailedOnPurpose(Exception):
    """Raised by a view after its enqueue, to roll its transaction back."""


def count_orders(engine: Engine, reference: str) -> int:
    with Session(engine) as session:
        return (
            session.scalar(
                select(func.count()).select_from(Order).where(Order.reference == reference)
            )
            or 0
        )


def driver_connection(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection of the session's transaction (SQLAlchemy types it as
    ``Any | None``)."""
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection), "needs the postgresql+psycopg driver"
    return raw


def gift_wrap_in_savepoint(session: Session, body: Any) -> None:
    """Enqueue a gift-wrapped parcel in a SAVEPOINT that fails: the order goes on without
    it. SQLAlchemy emits the SAVEPOINT when the connection is asked for inside the block."""
    try:
        with session.begin_nested():
            gift = body | {"reference": f"{body['reference']}-gift"}
            postgres.enqueue(driver_connection(session), ship_order, gift)
            raise FailedOnPurpose("gift wrapping failed")
    except FailedOnPurpose:
        pass


def create_app(
    trellis_url: str, *, database_url: str | None = None, sqlite_path: str | None = None
) -> Flask:
    """The app; ``database_url`` is ``postgresql+psycopg://…`` (its tables are created)."""
    app = Flask(__name__)
    client = Client(trellis_url)
    app.extensions["trellis"] = client
    engine = None
    if database_url is not None:
        engine = create_engine(database_url)
        Base.metadata.create_all(engine)
        app.extensions["engine"] = engine

    @app.errorhandler(ValidationError)
    def invalid(exc: ValidationError) -> tuple[Response, int]:
        return jsonify(field=exc.field, message=str(exc)), 400

    @app.errorhandler(FailedOnPurpose)
    def failed(exc: FailedOnPurpose) -> tuple[Response, int]:
        return jsonify(message=str(exc)), 500

    @app.post("/orders-client")
    def order_by_client() -> tuple[Response, int]:
        body: Any = request.get_json()
        task = client.submit(ship_order, body)
        return jsonify(task_id=task.id), 202

    @app.post("/orders")
    def order_in_transaction() -> tuple[Response, int]:
        assert engine is not None, "create_app(database_url=...) serves /orders"
        body: Any = request.get_json()
        with Session(engine) as session, session.begin():
            session.add(Order(**body))
            session.flush()  # the row first, then the task, in one transaction
            # SQLAlchemy types driver_connection as Any | None: the psycopg connection here
            task_id = postgres.enqueue(driver_connection(session), ship_order, body)
            if request.args.get("gift") == "fail":
                gift_wrap_in_savepoint(session, body)
            if request.args.get("fail"):
                raise FailedOnPurpose(f"order {body['reference']} failed after enqueue")
        return jsonify(task_id=task_id), 202

    @app.post("/orders-sqlite")
    def order_into_sqlite() -> tuple[Response, int]:
        assert sqlite_path is not None, "create_app(sqlite_path=...) serves /orders-sqlite"
        body: Any = request.get_json()
        try:
            task_id = sqlite.enqueue(sqlite_path, ship_order, body)
        finally:
            sqlite.close()  # each request has a thread of its own: keep no connection
        return jsonify(task_id=task_id), 202

    return app


def close_app(app: Flask) -> None:
    """Close what ``create_app`` opened: the Trellis client and the database engine."""
    app.extensions["trellis"].close()
    if (engine := app.extensions.get("engine")) is not None:
        engine.dispose()
