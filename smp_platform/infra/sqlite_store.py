"""Feast's SQLite online store, one row per post and view: :class:`WideSqliteOnlineStore`.

Feast's own SQLite store keeps one row per post *per feature*. For the full feature service a
lookup of 1,000 posts reads ~52,000 rows (105 ms of the batch endpoint's 124 ms, measured on
this project's demo data dir), and materialize executes one upsert per feature value. This
store keeps Feast's interface and semantics (materialize, push, ``get_online_features``,
``apply`` and ``teardown`` all go through it; the entity-key serialization and the ``ValueProto``
bytes are Feast's) and changes only the layout of the table behind each view:

    "<Feast's table name>_wide" (entity_key BLOB PRIMARY KEY, event_ts, created_ts,
                                 "f_<feature>" BLOB, ... one column per feature)

- **Values**: a scalar is stored as SQLite's own value (a double or float as REAL, an integer,
  bool or timestamp as INTEGER, a string as TEXT, a null as NULL) and anything else (lists,
  bytes) as Feast's serialized ``ValueProto``; ``online_read`` rebuilds the ``ValueProto`` from
  the view's declared type. A reader gets numbers and strings without decoding anything (1,000
  posts of the full feature service: 20 ms decoding protobuf bytes, ~10 ms this way), and the
  table can be read with any SQLite client. SQLite stores a NaN as NULL: it reads back as null.
- **Reads**: one row per post and view; the service reads all its views in one statement
  (:mod:`smp_platform.service.reader`), Feast's ``online_read`` one statement per view.
- **Writes**: one upsert per post and view (``executemany``). An upsert names only the features
  it writes, so a write of some features keeps the others (as Feast's layout does).
- **Schema**: ``feast apply`` creates the table and adds a column for a new feature; a removed
  feature's column stays (unread) until the view is deleted.
- **Upgrade**: a data dir written with Feast's layout is copied into the wide table by the
  first ``apply`` that creates it (its values stay serialized ``ValueProto`` bytes, which every
  reader takes too, until the post is written again), then Feast's table is dropped: no
  re-materialization.

Configured as ``online_store: {type: smp_platform.infra.sqlite_store.WideSqliteOnlineStore, path:
...}`` (the embedded profile; the compose profile uses Redis). ``plan`` reports no infra
objects: Feast's ``SqliteTable`` would create tables of its own layout on ``feast apply``.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from feast import Entity, FeatureView, ValueType
from feast.infra.infra_object import InfraObject
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.utils import to_naive_utc

log = logging.getLogger(__name__)

BOOKKEEPING = ("entity_key", "event_ts", "created_ts")
FEATURE_PREFIX = "f_"  # keeps a feature called "event_ts" apart from the bookkeeping columns
# SQLite's default bound on host parameters is 32,766; a read of more keys is split.
MAX_KEYS_PER_STATEMENT = 10_000


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def feature_column(feature: str) -> str:
    return quote(FEATURE_PREFIX + feature)


def legacy_table_name(config: RepoConfig, view: Any) -> str:
    """Feast's own table name for ``view`` (its one-row-per-feature layout)."""
    return compute_table_id(
        config.project, view, config.registry.enable_online_feature_view_versioning
    )


def wide_table_name(config: RepoConfig, view: Any) -> str:
    return legacy_table_name(config, view) + "_wide"


def table_features(conn: sqlite3.Connection, table: str) -> set[str]:
    """The features a wide table has a column for (empty when the table does not exist)."""
    rows = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    return {
        name[len(FEATURE_PREFIX) :]
        for _, name, *_ in rows
        if name not in BOOKKEEPING and name.startswith(FEATURE_PREFIX)
    }


def entity_key_bytes(config: RepoConfig, keys: Iterable[EntityKeyProto]) -> list[bytes]:
    version = config.entity_key_serialization_version
    return [serialize_entity_key(k, entity_key_serialization_version=version) for k in keys]


def string_key_encoder(config: RepoConfig, join_key: str) -> Callable[[str], bytes]:
    """Feast's serialized entity key of a one-string-key entity, without building protos
    (1,000 keys: 4.3 ms through ``serialize_entity_key``, 0.3 ms here).

    The bytes are Feast's: a constant prefix (the join key) then the value's length and UTF-8
    bytes. The prefix is cut from Feast's own serialization of an empty value, and the encoder
    is checked against Feast on sample values; where they differ (another serialization
    version), Feast's function is used as is.
    """
    version = config.entity_key_serialization_version

    def feast(value: str) -> bytes:
        key = EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(string_val=value)])
        return serialize_entity_key(key, entity_key_serialization_version=version)

    empty = feast("")
    length = struct.Struct("<I")
    if not empty.endswith(length.pack(0)):
        return feast
    prefix = empty[: -length.size]

    def fast(value: str) -> bytes:
        encoded = value.encode("utf-8")
        return prefix + length.pack(len(encoded)) + encoded

    samples = ("P1", "póst/ünïcode ✓", "x" * 300)
    return fast if all(fast(v) == feast(v) for v in samples) else feast


# ValueProto fields stored as SQLite's own values (the rest as serialized ValueProto bytes)
_SCALARS = frozenset(
    {"double_val", "float_val", "int64_val", "int32_val", "unix_timestamp_val", "bool_val"}
)
_INT_FIELDS = {
    ValueType.INT32: "int32_val",
    ValueType.BOOL: "bool_val",
    ValueType.UNIX_TIMESTAMP: "unix_timestamp_val",
}


def to_column(value: ValueProto) -> Any:
    """A feature value as stored: SQLite's own scalar, NULL, or the serialized ValueProto."""
    which = value.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    if which == "string_val":
        return value.string_val
    if which in _SCALARS:
        scalar = getattr(value, which)
        return int(scalar) if which == "bool_val" else scalar
    return value.SerializeToString()


def from_column(stored: Any, value_type: ValueType | None) -> ValueProto:
    """A stored value as Feast's ValueProto, typed by the view's declared type."""
    if stored is None:
        return ValueProto()
    if isinstance(stored, bytes):
        return ValueProto.FromString(stored)
    if isinstance(stored, str):
        return ValueProto(string_val=stored)
    if isinstance(stored, float):
        if value_type == ValueType.FLOAT:
            return ValueProto(float_val=stored)
        return ValueProto(double_val=stored)
    value = ValueProto()
    field = _INT_FIELDS.get(value_type, "int64_val")  # type: ignore[arg-type]
    setattr(value, field, bool(stored) if field == "bool_val" else stored)
    return value


class WideSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Feast's SQLite online-store settings (``path``), with this store's type."""

    type: Literal["smp_platform.infra.sqlite_store.WideSqliteOnlineStore"] = (
        "smp_platform.infra.sqlite_store.WideSqliteOnlineStore"  # type: ignore[assignment]
    )


class WideSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store with one row per entity and view (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        # each wide table's feature columns, as last read (see _features)
        self._feature_columns: dict[str, set[str]] = {}

    # -- writes ---------------------------------------------------------------------------
    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        conn = self._get_conn(config)
        name = wide_table_name(config, table)
        known = table_features(conn, name)
        if not known and not _exists(conn, name):
            _create(conn, name, [f.name for f in table.features])
            known = table_features(conn, name)
        keys = entity_key_bytes(config, (row[0] for row in data))
        with conn:
            # Consecutive rows with the same features are one executemany: in write order, so
            # a key written twice in one batch ends with its last row, as in Feast's store.
            run: list[tuple[Any, ...]] = []
            run_features: tuple[str, ...] | None = None
            for key, (_, values, timestamp, created) in zip(keys, data, strict=True):
                features = tuple(values)
                if features != run_features:
                    if run_features is not None:
                        _upsert(conn, name, run_features, run, known)
                    run, run_features = [], features
                run.append(
                    (
                        key,
                        to_naive_utc(timestamp),
                        to_naive_utc(created) if created is not None else None,
                        *map(to_column, values.values()),
                    )
                )
            if run_features is not None:
                _upsert(conn, name, run_features, run, known)
        if progress:
            progress(len(data))

    # -- reads ----------------------------------------------------------------------------
    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        try:
            return self._online_read(config, table, entity_keys, requested_features)
        except sqlite3.OperationalError:
            # the table was dropped and created again since its columns were cached
            self._feature_columns.pop(wide_table_name(config, table), None)
            return self._online_read(config, table, entity_keys, requested_features)

    def _online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        conn = self._get_conn(config)
        name = wide_table_name(config, table)
        stored = self._features(conn, name, requested_features or ())
        if not stored and not _exists(conn, name):
            # a store lost or replaced since the views were applied: it holds no row (the
            # next write creates the table; the refresh's online check restores the rows)
            return [(None, None)] * len(entity_keys)
        if requested_features is None:
            features = sorted(stored)
        else:
            features = [f for f in dict.fromkeys(requested_features) if f in stored]
        keys = entity_key_bytes(config, entity_keys)
        types = {f.name: f.dtype.to_value_type() for f in table.features}
        builders = [(feature, types.get(feature)) for feature in features]
        found: dict[bytes, tuple[datetime | None, dict[str, ValueProto] | None]] = {}
        columns = ", ".join(["entity_key", "event_ts", *map(feature_column, features)])
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), MAX_KEYS_PER_STATEMENT):
            chunk = unique[start : start + MAX_KEYS_PER_STATEMENT]
            rows = conn.execute(
                f"SELECT {columns} FROM {quote(name)} "
                f"WHERE entity_key IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for key, event_ts, *values in rows:
                answer = {
                    feature: from_column(value, value_type)
                    for (feature, value_type), value in zip(builders, values, strict=True)
                }
                found[key] = (_utc(event_ts), answer) if answer else (None, None)
        return [found.get(key, (None, None)) for key in keys]

    def _features(self, conn: sqlite3.Connection, table: str, wanted: Iterable[str]) -> set[str]:
        """The table's feature columns, cached: read again when a wanted one is not among them
        (an ``apply`` in another process may have added it)."""
        known = self._feature_columns.get(table)
        if known is None or not known.issuperset(wanted):
            known = self._feature_columns[table] = table_features(conn, table)
        return known

    # -- schema ---------------------------------------------------------------------------
    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        conn = self._get_conn(config)
        with conn:
            for view in tables_to_keep:
                name = wide_table_name(config, view)
                features = [f.name for f in view.features]
                if _exists(conn, name):
                    _add_columns(conn, name, set(features) - table_features(conn, name))
                    continue
                _create(conn, name, features)
                legacy = legacy_table_name(config, view)
                if _exists(conn, legacy):
                    copied = _copy_legacy(conn, legacy, name, features)
                    conn.execute(f"DROP TABLE {quote(legacy)}")
                    log.info("online store: %s rows of %s moved to %s", copied, legacy, name)
            for view in tables_to_delete:
                conn.execute(f"DROP TABLE IF EXISTS {quote(wide_table_name(config, view))}")
                conn.execute(f"DROP TABLE IF EXISTS {quote(legacy_table_name(config, view))}")

    def plan(self, config: RepoConfig, desired_registry_proto: RegistryProto) -> list[InfraObject]:
        return []

    def retrieve_online_documents(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("WideSqliteOnlineStore has no vector search")

    def retrieve_online_documents_v2(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("WideSqliteOnlineStore has no vector search")


def _exists(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def _create(conn: sqlite3.Connection, table: str, features: Sequence[str]) -> None:
    columns = "".join(f", {feature_column(f)} BLOB" for f in features)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {quote(table)} (entity_key BLOB PRIMARY KEY, "
        f"event_ts timestamp, created_ts timestamp{columns})"
    )


def _add_columns(conn: sqlite3.Connection, table: str, features: Iterable[str]) -> None:
    for feature in sorted(features):
        conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {feature_column(feature)} BLOB")


def _upsert(
    conn: sqlite3.Connection,
    table: str,
    features: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    known: set[str],
) -> None:
    missing = set(features) - known
    if missing:  # a feature added to the view since the last apply
        _add_columns(conn, table, missing)
        known |= missing
    names = ["event_ts", "created_ts", *map(feature_column, features)]
    updates = ", ".join(f"{c} = excluded.{c}" for c in names)
    conn.executemany(
        f"INSERT INTO {quote(table)} (entity_key, {', '.join(names)}) "
        f"VALUES ({', '.join('?' * (len(names) + 1))}) "
        f"ON CONFLICT(entity_key) DO UPDATE SET {updates}",
        rows,
    )


def _copy_legacy(conn: sqlite3.Connection, legacy: str, table: str, features: Sequence[str]) -> int:
    """Feast's one-row-per-feature table pivoted into ``table``: returns the rows written."""
    if not features:
        return 0
    picks = ", ".join("max(CASE WHEN feature_name = ? THEN value END)" for _ in features)
    cursor = conn.execute(
        f"INSERT OR IGNORE INTO {quote(table)} (entity_key, event_ts, created_ts, "
        f"{', '.join(map(feature_column, features))}) "
        f"SELECT entity_key, max(event_ts), max(created_ts), {picks} "
        f"FROM {quote(legacy)} GROUP BY entity_key",
        list(features),
    )
    return cursor.rowcount


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
