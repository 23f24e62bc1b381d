"""One SQLAlchemy session per request, committed or rolled back at the request boundary.

Views call :func:`db_session` and never commit themselves: a response below
400 commits, anything else (an error page, a form sent back with messages, an
exception) rolls back, so an operation's changes land together or not at all.

One exception: a view whose error response must still record something (a
failed sign-in is counted, see :mod:`engine.sign_in_throttle`) sets
:func:`keep_despite_error`.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, Response, current_app, g, request

import engine

EXTENSION = "procflow"


class Database:
    """The app's database engine and session factory."""

    def __init__(self, url: str | None) -> None:
        self.engine: sa.Engine = engine.create_db_engine(url)
        self.session_factory: so.sessionmaker[so.Session] = engine.create_session_factory(self.engine)
        self.reading_session_factory: so.sessionmaker[so.Session] = engine.create_session_factory(
            engine.reading_engine(self.engine)
        )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def database(app: Flask | None = None) -> Database:
    """Return the :class:`Database` of *app* (default: the current app)."""
    target = app or current_app
    db: Database = target.extensions[EXTENSION]
    return db


def db_session() -> so.Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        # Showing a page only reads: on SQLite it need not wait for another request's write lock.
        reads_only = request.method in ("GET", "HEAD")
        db = database()
        g.db_session = (db.reading_session_factory if reads_only else db.session_factory)()
    session: so.Session = g.db_session
    return session


def keep_despite_error() -> None:
    """Commit this request's session even if the response is an error (see the module docstring)."""
    g.commit_despite_error = True


def _finish(response: Response) -> Response:
    session: so.Session | None = g.get("db_session")
    if session is not None:
        if response.status_code < 400 or g.get("commit_despite_error"):
            session.commit()
        else:
            session.rollback()
    return response


def _close(_exc: BaseException | None) -> None:
    session: so.Session | None = g.pop("db_session", None)
    if session is not None:
        # Rolls back whatever an exception left uncommitted.
        session.close()


def init_app(app: Flask) -> None:
    """Attach the database to *app* and install the per-request session handling."""
    app.extensions[EXTENSION] = Database(app.config.get("DATABASE_URL"))
    app.after_request(_finish)
    app.teardown_request(_close)
