"""The DuckDB warehouse: raw posts, their authors, labels and quarantine (docs/CONTRACTS.md),
and every SQL read of them.

The tables' columns are :mod:`smp_platform.core.tables`'s; the source readers build their rows
to them.

Loading is an upsert by post_id inside one transaction: same content -> unchanged, new
content -> updated, and a failure part-way leaves the previous state. Values always travel
as bound parameters or registered Arrow tables, never formatted into SQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from smp_platform.core.tables import (
    AUTHOR_COLUMNS,
    AUTHOR_PROFILE_COLUMNS,
    LABEL_COLUMNS,
    POST_COLUMNS,
    QUARANTINE_COLUMNS,
    ParsedBatch,
    reason_kind,
)
from smp_platform.features.group import FeatureInputs, Input

# -- tables -----------------------------------------------------------------------------------
# The refresh's record of offline parquet parts already materialized to the online store, one
# row per (view, part file) as it was when materialized (size + mtime): a part missing here, or
# rewritten since, is pending, whoever wrote it and however that run ended.
MATERIALIZED_PART_COLUMNS: dict[str, str] = {
    "feature_view": "VARCHAR",
    "part": "VARCHAR",
    "size": "BIGINT",
    "mtime_ns": "BIGINT",
    "min_ts": "TIMESTAMP",
    "max_ts": "TIMESTAMP",
}

TABLES: dict[str, dict[str, str]] = {
    "posts": {**POST_COLUMNS, "ingested_at": "TIMESTAMP"},
    "post_authors": {**AUTHOR_COLUMNS, "ingested_at": "TIMESTAMP"},
    "labels": {**LABEL_COLUMNS, "ingested_at": "TIMESTAMP"},
    "quarantine": {**QUARANTINE_COLUMNS, "quarantined_at": "TIMESTAMP"},
    "materialized_parts": {**MATERIALIZED_PART_COLUMNS, "materialized_at": "TIMESTAMP"},
}
_CONSTRAINTS = {
    "posts": "PRIMARY KEY (post_id)",
    "post_authors": "PRIMARY KEY (post_id)",
    "labels": "PRIMARY KEY (post_id)",
    "quarantine": "PRIMARY KEY (source_file, line, reason)",
    "materialized_parts": "PRIMARY KEY (feature_view, part)",
}
_NOT_NULL = {("posts", "user_id")}

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "VARCHAR[]": pa.list_(pa.string()),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
}


@dataclass
class IngestSummary:
    """What one load did, counted by post; quarantine counts are the batch's."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    labels: int = 0
    # Labels are counted apart from posts: a label that changed on a post whose content did
    # not is work for the next training run, and "0 updated" would hide it.
    labels_added: int = 0
    labels_changed: int = 0
    quarantined_new: int = 0  # quarantine rows not already in the warehouse
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated + self.unchanged

    @property
    def labels_unchanged(self) -> int:
        return self.labels - self.labels_added - self.labels_changed

    def __str__(self) -> str:
        text = (
            f"{self.loaded:,} loaded ({self.inserted:,} new, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged), {self.labels:,} labels "
            f"({self.labels_added:,} added, {self.labels_changed:,} changed, "
            f"{self.labels_unchanged:,} unchanged), {self.quarantined:,} quarantined"
        )
        if self.reasons:
            text += ": " + ", ".join(f"{n:,} {kind}" for kind, n in self.reasons.most_common())
        return text


def _ddl(table: str, columns: Mapping[str, str]) -> str:
    lines = [
        f"{name} {sql_type}{' NOT NULL' if (table, name) in _NOT_NULL else ''}"
        for name, sql_type in columns.items()
    ]
    lines.append(_CONSTRAINTS[table])
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  " + ",\n  ".join(lines) + "\n)"


def _arrow(frame: pd.DataFrame, columns: Mapping[str, str]) -> pa.Table:
    schema = pa.schema([pa.field(name, _ARROW_TYPES[t]) for name, t in columns.items()])
    return pa.Table.from_pandas(frame[list(columns)], schema=schema, preserve_index=False)


class Warehouse:
    """A DuckDB file holding the canonical tables; use as a context manager."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise FileNotFoundError(
                f"no warehouse at {self.path}: load a dataset first (smp load ...)"
            )
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path), read_only=read_only)
        if not read_only:
            for table, columns in TABLES.items():
                self._con.execute(_ddl(table, columns))

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- loading -------------------------------------------------------------------------------

    def ingest(self, batch: ParsedBatch) -> IngestSummary:
        """Upsert the batch's posts, authors and labels by post_id and add new quarantine rows."""
        staged = {
            "batch_posts": _arrow(batch.posts, POST_COLUMNS),
            "batch_authors": _arrow(batch.authors, AUTHOR_COLUMNS),
            "batch_labels": _arrow(batch.labels, LABEL_COLUMNS),
            "batch_quarantine": _arrow(batch.quarantine, QUARANTINE_COLUMNS),
        }
        summary = IngestSummary(
            quarantined=len(batch.quarantine),
            labels=len(batch.labels),
            reasons=Counter(reason_kind(r) for r in batch.quarantine["reason"]),
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        for name, table in staged.items():
            self._con.register(name, table)
        try:
            self._con.execute("BEGIN TRANSACTION")
            try:
                summary.inserted, summary.updated = self._count_changes()
                summary.unchanged = len(batch.posts) - summary.inserted - summary.updated
                summary.labels_added, summary.labels_changed = self._count_label_changes()
                self._upsert_posts(now)
                self._upsert_authors(now)
                self._upsert_labels(now)
                summary.quarantined_new = self._insert_quarantine(now)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        finally:
            for name in staged:
                self._con.unregister(name)
        return summary

    def _count_changes(self) -> tuple[int, int]:
        """(new, updated) posts of the staged batch; a changed author makes its post updated."""
        (row,) = self._con.execute(
            """
            SELECT
              count(*) FILTER (WHERE p.post_id IS NULL),
              count(*) FILTER (WHERE p.post_id IS NOT NULL AND (
                  p.content_hash <> b.content_hash
                  OR ba.content_hash IS DISTINCT FROM a.content_hash))
            FROM batch_posts b
            LEFT JOIN posts p ON p.post_id = b.post_id
            LEFT JOIN batch_authors ba ON ba.post_id = b.post_id
            LEFT JOIN post_authors a ON a.post_id = b.post_id
            """
        ).fetchall()  # fetchone would leave the result open, blocking register() (DuckDB 2)
        return int(row[0]), int(row[1])

    def _count_label_changes(self) -> tuple[int, int]:
        """(added, changed) labels of the staged batch, against the labels already stored."""
        (row,) = self._con.execute(
            """
            SELECT
              count(*) FILTER (WHERE t.post_id IS NULL),
              count(*) FILTER (WHERE t.post_id IS NOT NULL
                               AND t.popularity IS DISTINCT FROM b.popularity)
            FROM batch_labels b
            LEFT JOIN labels t ON t.post_id = b.post_id
            """
        ).fetchall()
        return int(row[0]), int(row[1])

    def _replace_changed(self, table: str, staged: str, changed: str, now: datetime) -> None:
        """Delete the rows whose content changed, then insert what is new or changed."""
        self._con.execute(
            f"DELETE FROM {table} WHERE post_id IN ("
            f"SELECT b.post_id FROM {staged} b JOIN {table} t ON t.post_id = b.post_id "
            f"WHERE {changed})"
        )
        columns = ", ".join(f"b.{c}" for c in TABLES[table] if c != "ingested_at")
        self._con.execute(
            f"INSERT INTO {table} SELECT {columns}, ? FROM {staged} b "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.post_id = b.post_id)",
            [now],
        )

    def _upsert_posts(self, now: datetime) -> None:
        self._replace_changed("posts", "batch_posts", "t.content_hash <> b.content_hash", now)

    def _upsert_authors(self, now: datetime) -> None:
        self._replace_changed(
            "post_authors", "batch_authors", "t.content_hash IS DISTINCT FROM b.content_hash", now
        )

    def _upsert_labels(self, now: datetime) -> None:
        self._replace_changed(
            "labels", "batch_labels", "t.popularity IS DISTINCT FROM b.popularity", now
        )

    def _insert_quarantine(self, now: datetime) -> int:
        before = self.count("quarantine")
        self._con.execute(
            """
            INSERT INTO quarantine
            SELECT source_file, line, post_id, reason, raw, ?
            FROM batch_quarantine b
            WHERE NOT EXISTS (
              SELECT 1 FROM quarantine q
              WHERE q.source_file = b.source_file AND q.line = b.line AND q.reason = b.reason)
            QUALIFY row_number() OVER (PARTITION BY source_file, line, reason) = 1
            """,
            [now],
        )
        return self.count("quarantine") - before

    def quarantine_features(
        self, rows: Sequence[tuple[str, str]], *, stage: str = "refresh"
    ) -> int:
        """Record posts whose feature inputs were set aside (e.g. an unreadable image).

        The post keeps a null feature; the row says why. Re-recording the same reason adds none.
        """
        if not rows:
            return 0
        frame = pd.DataFrame(
            {
                "source_file": stage,
                "line": 0,
                "post_id": [post_id for post_id, _ in rows],
                "reason": [f"{reason} (post {post_id})" for post_id, reason in rows],
                "raw": None,
            }
        )
        before = self.count("quarantine")
        self._con.register("feature_quarantine", frame)
        try:
            self._con.execute(
                """
                INSERT INTO quarantine
                SELECT source_file, line, post_id, reason, raw::VARCHAR, ?
                FROM feature_quarantine b
                WHERE NOT EXISTS (
                  SELECT 1 FROM quarantine q
                  WHERE q.source_file = b.source_file AND q.line = b.line AND q.reason = b.reason)
                """,
                [datetime.now(UTC).replace(tzinfo=None)],
            )
        finally:
            self._con.unregister("feature_quarantine")
        return self.count("quarantine") - before

    def record_materialized(self, rows: pd.DataFrame) -> None:
        """Record parts as materialized (``MATERIALIZED_PART_COLUMNS``); a re-record replaces."""
        if rows.empty:
            return
        frame = rows[list(MATERIALIZED_PART_COLUMNS)].assign(
            materialized_at=datetime.now(UTC).replace(tzinfo=None)
        )
        staged = _arrow(frame, TABLES["materialized_parts"])
        self._con.register("batch_materialized", staged)
        try:
            self._con.execute(
                "INSERT OR REPLACE INTO materialized_parts SELECT * FROM batch_materialized"
            )
        finally:
            self._con.unregister("batch_materialized")

    def materialized_parts(self) -> pd.DataFrame:
        """feature_view, part, size, mtime_ns of every part recorded as materialized."""
        return self._con.execute(
            "SELECT feature_view, part, size, mtime_ns FROM materialized_parts"
        ).df()

    # -- reading -------------------------------------------------------------------------------

    def posts_frame(self, post_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Posts with their author columns (all posts when ``post_ids`` is None), by time."""
        author_columns = ", ".join(f"a.{c}" for c in AUTHOR_PROFILE_COLUMNS)
        query = (
            f"SELECT p.*, {author_columns}, a.content_hash AS author_content_hash "
            "FROM posts p LEFT JOIN post_authors a ON a.post_id = p.post_id "
        )
        if post_ids is None:
            frame = self._con.execute(query + "ORDER BY p.posted_at, p.post_id").df()
        else:
            with self._registered_ids(post_ids):
                frame = self._con.execute(
                    query + "WHERE p.post_id IN (SELECT post_id FROM wanted_posts) "
                    "ORDER BY p.posted_at, p.post_id"
                ).df()
        frame["tags"] = [None if t is None else list(t) for t in frame["tags"]]
        return _typed(frame, {**TABLES["posts"], **TABLES["post_authors"]})

    def feature_inputs(self, post_ids: Sequence[str], reads: Collection[Input]) -> FeatureInputs:
        """What a feature group's compute receives for these posts: the posts frame, and the
        author history and the authors' label history when the group reads them."""
        return FeatureInputs(
            posts=self.posts_frame(post_ids),
            author_history=self.author_history(post_ids) if Input.AUTHOR_HISTORY in reads else None,
            label_history=self.author_label_history(post_ids)
            if Input.LABEL_HISTORY in reads
            else None,
        )

    def post_input_keys(self) -> pd.DataFrame:
        """post_id, content_hash, author_content_hash and media_path of every post, by time.

        What :func:`smp_platform.features.inputs.input_hashes` needs to plan a refresh, without
        loading every column of every post (titles, tags, author fields) as ``posts_frame``
        would: four short strings per post. Same order and same values as ``posts_frame()``.
        """
        return self._con.execute(
            "SELECT p.post_id, p.content_hash, a.content_hash AS author_content_hash, "
            "p.media_path FROM posts p LEFT JOIN post_authors a ON a.post_id = p.post_id "
            "ORDER BY p.posted_at, p.post_id"
        ).df()

    def latest_author(self, user_id: str) -> dict[str, Any] | None:
        """The author row (``AUTHOR_COLUMNS``) of the user's latest post, or None: the profile a
        draft or a pushed post without its own author block is scored with."""
        columns = ", ".join(f"a.{c}" for c in AUTHOR_COLUMNS)
        rows = self._con.execute(
            f"SELECT {columns} FROM posts p JOIN post_authors a ON a.post_id = p.post_id "
            "WHERE p.user_id = ? ORDER BY p.posted_at DESC, p.post_id DESC LIMIT 1",
            [user_id],
        ).df()
        if rows.empty:
            return None
        row = _typed(rows, AUTHOR_COLUMNS).astype(object).iloc[0].to_dict()
        return {k: None if pd.isna(v) else v for k, v in row.items()}

    def post_times_by_author(self) -> pd.DataFrame:
        """user_id and posted_at of every post, by author then time (the author index)."""
        return self._con.execute(
            "SELECT user_id, posted_at FROM posts ORDER BY user_id, posted_at"
        ).df()

    def latest_author_rows(self) -> pd.DataFrame:
        """Per author, user_id and the author columns of their latest post (the profile a
        draft without its own author block is scored with)."""
        columns = ", ".join(f"a.{c}" for c in AUTHOR_PROFILE_COLUMNS)
        return self._con.execute(
            f"SELECT p.user_id, {columns} FROM posts p "
            "JOIN post_authors a ON a.post_id = p.post_id "
            "QUALIFY row_number() OVER "
            "(PARTITION BY p.user_id ORDER BY p.posted_at DESC, p.post_id DESC) = 1"
        ).df()

    def labelled_posts_by_author(self) -> pd.DataFrame:
        """post_id, user_id, posted_at and popularity of every labelled post, by author and
        time."""
        return self._con.execute(
            "SELECT p.post_id, p.user_id, p.posted_at, l.popularity FROM posts p "
            "JOIN labels l ON l.post_id = p.post_id ORDER BY p.user_id, p.posted_at"
        ).df()

    def stored_post_hashes(self, post_id: str) -> tuple[str, str | None] | None:
        """(post content hash, author content hash) of a stored post, or None if not stored."""
        rows = self._con.execute(
            "SELECT p.content_hash, a.content_hash FROM posts p "
            "LEFT JOIN post_authors a ON a.post_id = p.post_id WHERE p.post_id = ?",
            [post_id],
        ).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def labels_frame(self) -> pd.DataFrame:
        """post_id, popularity and the post's posted_at, by time."""
        return self._con.execute(
            "SELECT l.post_id, l.popularity, p.posted_at FROM labels l "
            "LEFT JOIN posts p ON p.post_id = l.post_id ORDER BY p.posted_at, l.post_id"
        ).df()

    def quarantine_frame(self) -> pd.DataFrame:
        return _typed(
            self._con.execute(
                "SELECT * FROM quarantine ORDER BY quarantined_at, source_file, line, reason"
            ).df(),
            TABLES["quarantine"],
        )

    def count(self, table: str) -> int:
        """Rows in one of the warehouse tables."""
        if table not in TABLES:
            raise ValueError(f"no table {table!r} in the warehouse; tables: {', '.join(TABLES)}")
        ((rows,),) = self._con.execute(f"SELECT count(*) FROM {table}").fetchall()
        return int(rows)

    def author_history(self, post_ids: Sequence[str]) -> pd.DataFrame:
        """Per requested post: the author's posts strictly before it and days since the last one.

        Counted over every post in the warehouse, in request order; unknown ids get NULLs.
        """
        with self._registered_ids(post_ids):
            frame = self._con.execute(
                """
                WITH moments AS (  -- posts at the same instant do not precede each other
                  SELECT user_id, posted_at, count(*) AS n_posts
                  FROM posts
                  -- only the batch's authors: a batch costs its authors' history, not the table
                  WHERE user_id IN (SELECT p.user_id FROM wanted_posts w
                                    JOIN posts p ON p.post_id = w.post_id)
                  GROUP BY user_id, posted_at
                ),
                history AS (
                  SELECT user_id, posted_at,
                    sum(n_posts) OVER earlier - n_posts AS prior_posts,
                    lag(posted_at) OVER (PARTITION BY user_id ORDER BY posted_at) AS previous_at
                  FROM moments
                  WINDOW earlier AS (PARTITION BY user_id ORDER BY posted_at
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                )
                SELECT w.post_id,
                  CAST(h.prior_posts AS BIGINT) AS author_prior_posts,
                  epoch(h.posted_at - h.previous_at) / 86400.0
                    AS author_days_since_previous_post
                FROM wanted_posts w
                LEFT JOIN posts p ON p.post_id = w.post_id
                LEFT JOIN history h ON h.user_id = p.user_id AND h.posted_at = p.posted_at
                ORDER BY w.position
                """
            ).df()
        frame["author_prior_posts"] = frame["author_prior_posts"].astype("Int64")
        frame["author_days_since_previous_post"] = frame["author_days_since_previous_post"].astype(
            "float64"
        )
        return frame

    def author_label_history(self, post_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Every post of the authors of ``post_ids`` (of every author when None): post_id,
        user_id, posted_at and popularity (null when unlabelled), by time."""
        query = (
            "SELECT p.post_id, p.user_id, p.posted_at, l.popularity FROM posts p "
            "LEFT JOIN labels l ON l.post_id = p.post_id "
        )
        order = "ORDER BY p.posted_at, p.post_id"
        if post_ids is None:
            return self._con.execute(query + order).df()
        with self._registered_ids(post_ids):
            return self._con.execute(
                query + "WHERE p.user_id IN (SELECT q.user_id FROM wanted_posts w "
                "JOIN posts q ON q.post_id = w.post_id) " + order
            ).df()

    def _registered_ids(self, post_ids: Sequence[str]) -> _Registered:
        ids = pa.table(
            {
                "post_id": pa.array([str(p) for p in post_ids], pa.string()),
                "position": pa.array(range(len(post_ids)), pa.int64()),
            }
        )
        return _Registered(self._con, "wanted_posts", ids)


def _typed(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """Counts as Int64 and flags as boolean whether or not this result happens to hold NULLs."""
    for name, sql_type in columns.items():
        if name in frame.columns and sql_type in ("BIGINT", "BOOLEAN"):
            frame[name] = frame[name].astype("Int64" if sql_type == "BIGINT" else "boolean")
    return frame


class _Registered:
    """Registers an Arrow table under a name for the duration of a ``with`` block."""

    def __init__(self, con: duckdb.DuckDBPyConnection, name: str, table: Any) -> None:
        self._con, self._name, self._table = con, name, table

    def __enter__(self) -> None:
        self._con.register(self._name, self._table)

    def __exit__(self, *exc: object) -> None:
        self._con.unregister(self._name)
