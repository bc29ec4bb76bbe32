"""The outcome store: served predictions and their realised outcomes, in SQLite or PostgreSQL.

`OutcomeStore(url)` opens (and migrates) the database through SQLAlchemy Core: a file path or a
`sqlite:///...` URL (WAL journal, a busy timeout, so several worker processes share one file), or a
`postgresql://...` URL (psycopg). Both get the same schema from the same migrations (MIGRATIONS,
recorded in `maasfin_schema`).

- `record(...)`: the positive-class scores of one answered request, one row per input row,
  keyed by (request_id, row), with the model, version, time and optionally the input digest;
- `add_outcomes(items)`: labels joined to stored predictions, all or nothing (unknown or repeated
  ids, outcomes observed before their prediction: RequestError 4xx naming the item);
- `joined(model, version, since, until)`: (scores, labels, versions) of predictions with an
  outcome, made in [since, until);
- `purge(before)`: retention.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from maasfin.serving.errors import RequestError

__all__ = ["MIGRATIONS", "OutcomeStore", "StoreUnavailable", "check_dependencies", "store_url"]

log = logging.getLogger("maasfin.serving")


class StoreUnavailable(Exception):
    """The database cannot be reached, is locked past its timeout, or failed a statement."""


def _sqlalchemy():
    try:
        import sqlalchemy
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the outcome store (--store) needs SQLAlchemy: pip install "maasfin[outcomes]"'
            ' (and "maasfin[postgres]" for PostgreSQL)'
        ) from e
    return sqlalchemy


def check_dependencies(target: str) -> None:
    """ImportError naming the extra if the store `target` needs a library that is not installed."""
    _sqlalchemy()
    if not store_url(target).startswith("sqlite"):
        try:
            import psycopg  # noqa: F401
        except ImportError as e:
            raise ImportError(f'--store {target!r} needs psycopg: pip install "maasfin[postgres]"') from e


def store_url(target: str) -> str:
    """An SQLAlchemy URL from `--store`: a URL as is, a file path as SQLite."""
    if "://" in target:
        if not target.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(f"--store {target!r}: use a file path, sqlite:///PATH or postgresql://...")
        if target.startswith("postgresql://"):
            return "postgresql+psycopg://" + target[len("postgresql://") :]
        return target
    return "sqlite:///" + os.path.abspath(target)


def _tables(sa):
    md = sa.MetaData()
    predictions = sa.Table(
        "maasfin_predictions",
        md,
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("row", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=False),
        sa.Column("predicted_at", sa.Float(precision=53), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=True),
        sa.Index("maasfin_predictions_model_time", "model", "predicted_at"),
    )
    outcomes = sa.Table(
        "maasfin_outcomes",
        md,
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("row", sa.Integer, primary_key=True),
        sa.Column("label", sa.SmallInteger, nullable=False),
        sa.Column("observed_at", sa.Float(precision=53), nullable=False),
        sa.Column("received_at", sa.Float(precision=53), nullable=False),
    )
    schema = sa.Table("maasfin_schema", md, sa.Column("version", sa.Integer, primary_key=True))
    return md, predictions, outcomes, schema


def _migration_1(conn, sa, md) -> None:
    """The predictions and outcomes tables."""
    md.create_all(conn, checkfirst=True)


MIGRATIONS = (_migration_1,)  # append new steps; never edit a released one


class OutcomeStore:
    def __init__(self, target: str, timeout_s: float = 5.0):
        sa = self.sa = _sqlalchemy()
        self.url = store_url(target)
        self.sqlite = self.url.startswith("sqlite")
        if self.sqlite:
            self.engine = sa.create_engine(self.url, connect_args={"timeout": timeout_s})

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
                cur.close()
        else:
            self.engine = sa.create_engine(
                self.url, pool_pre_ping=True, connect_args={"connect_timeout": max(1, int(timeout_s))}
            )
        self.md, self.predictions, self.outcomes, self.schema = _tables(sa)
        self.migrate()

    # -- schema ----------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Applies the migrations the database has not seen (several workers may race: the loser
        retries once it can read the winner's work). Returns the schema version."""
        sa = self.sa
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if not self.sqlite:  # one migrating worker at a time
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7206419)"))
                    self.schema.create(conn, checkfirst=True)
                    current = conn.execute(sa.select(sa.func.max(self.schema.c.version))).scalar() or 0
                    for n, step in enumerate(MIGRATIONS[current:], start=current + 1):
                        step(conn, sa, self.md)
                        conn.execute(self.schema.insert().values(version=n))
                    return len(MIGRATIONS)
            except sa.exc.DBAPIError as e:
                if attempt == 4:
                    raise StoreUnavailable(f"the outcome store could not be migrated ({e.orig})") from e
                time.sleep(0.05 * (attempt + 1))
        return len(MIGRATIONS)

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(self.sa.select(self.sa.func.max(self.schema.c.version))).scalar() or 0

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ----------------------------------------------------------------------------------
    def record(self, request_id: str, model: str, version: int, scores: np.ndarray, at: float, digest=None) -> None:
        rows = [
            {
                "request_id": request_id,
                "row": i,
                "model": model,
                "version": int(version),
                "score": float(s),
                "predicted_at": at,
                "input_sha256": digest,
            }
            for i, s in enumerate(np.asarray(scores, dtype=np.float64).tolist())
        ]
        try:
            with self.engine.begin() as conn:
                conn.execute(self.predictions.insert(), rows)
        except self.sa.exc.DBAPIError as e:
            raise StoreUnavailable(f"predictions of request {request_id} were not stored ({e.orig})") from e

    def add_outcomes(self, items: list[dict], now: float, authorize=None) -> int:
        """Stores validated outcomes [{request_id, row, label, observed_at}] in one transaction;
        `authorize(model)` (raising RequestError) is called for the model of every prediction."""
        sa, p, o = self.sa, self.predictions, self.outcomes
        ids = sorted({it["request_id"] for it in items})
        try:
            with self.engine.begin() as conn:
                known: dict[tuple[str, int], float] = {}
                models: set[str] = set()
                have: set[tuple[str, int]] = set()
                for lo in range(0, len(ids), 500):
                    chunk = ids[lo : lo + 500]
                    for rid, row, at, model in conn.execute(
                        sa.select(p.c.request_id, p.c.row, p.c.predicted_at, p.c.model).where(p.c.request_id.in_(chunk))
                    ):
                        known[(rid, row)] = at
                        models.add(model)
                    for rid, row in conn.execute(sa.select(o.c.request_id, o.c.row).where(o.c.request_id.in_(chunk))):
                        have.add((rid, row))
                for model in sorted(models):
                    if authorize is not None:
                        authorize(model)
                for i, it in enumerate(items):
                    k = (it["request_id"], it["row"])
                    if k not in known:
                        raise RequestError(
                            404, f"outcomes[{i}]: no stored prediction for request_id {k[0]!r} row {k[1]}"
                        )
                    if k in have:
                        raise RequestError(409, f"outcomes[{i}]: request_id {k[0]!r} row {k[1]} already has an outcome")
                    if it["observed_at"] < known[k]:
                        raise RequestError(
                            422,
                            f"outcomes[{i}]: observed_at is before the prediction of request_id {k[0]!r} row {k[1]}",
                        )
                conn.execute(
                    o.insert(),
                    [
                        {
                            "request_id": it["request_id"],
                            "row": it["row"],
                            "label": it["label"],
                            "observed_at": it["observed_at"],
                            "received_at": now,
                        }
                        for it in items
                    ],
                )
        except sa.exc.IntegrityError as e:  # another worker stored one of them meanwhile
            raise RequestError(409, f"an outcome in this batch was stored concurrently ({e.orig})") from None
        except sa.exc.DBAPIError as e:
            raise StoreUnavailable(f"outcomes were not stored ({e.orig})") from e
        return len(items)

    def purge(self, before: float) -> int:
        """Deletes predictions made before `before` (epoch seconds) and their outcomes."""
        sa, p, o = self.sa, self.predictions, self.outcomes
        try:
            with self.engine.begin() as conn:
                old = sa.select(p.c.request_id).where(p.c.predicted_at < before)
                conn.execute(o.delete().where(o.c.request_id.in_(old)))
                return conn.execute(p.delete().where(p.c.predicted_at < before)).rowcount
        except sa.exc.DBAPIError as e:
            raise StoreUnavailable(f"retention purge failed ({e.orig})") from e

    # -- reads -----------------------------------------------------------------------------------
    def joined(self, model: str, version: int | None = None, since=None, until=None):
        """(scores float64, labels int, versions int64) of `model`'s predictions that have an
        outcome, made in [since, until) (epoch seconds; None: unbounded), ordered by time."""
        sa, p, o = self.sa, self.predictions, self.outcomes
        q = (
            sa.select(p.c.score, o.c.label, p.c.version)
            .select_from(p.join(o, sa.and_(p.c.request_id == o.c.request_id, p.c.row == o.c.row)))
            .where(p.c.model == model)
            .order_by(p.c.predicted_at, p.c.request_id, p.c.row)
        )
        if version is not None:
            q = q.where(p.c.version == version)
        if since is not None:
            q = q.where(p.c.predicted_at >= since)
        if until is not None:
            q = q.where(p.c.predicted_at < until)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
        except sa.exc.DBAPIError as e:
            raise StoreUnavailable(f"the outcome store could not be read ({e.orig})") from e
        if not rows:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        s, y, v = zip(*rows)
        return np.asarray(s, dtype=np.float64), np.asarray(y, dtype=np.int64), np.asarray(v, dtype=np.int64)
