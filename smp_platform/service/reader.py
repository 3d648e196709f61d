"""Online feature reads for the service: Feast's online store, read below ``get_online_features``.

Why not ``FeatureStore.get_online_features``:

- **Materialization.** Since Feast 0.64 it refuses a view whose registry state is
  ``MATERIALIZING`` (feast-dev/feast issue 6780): every nightly ``materialize`` was an outage of
  the lookup. Feast 0.67 has an opt-in ``serve_features_while_materializing`` registry flag, but
  it is documented as a no-op on the file registry of the embedded default and it still
  re-reads the registry on the request path. The service instead keeps a **snapshot** of the
  feature service's ``FeatureView`` objects, taken from Feast's registry when a champion is
  loaded (a deliberate refresh, never per request), and reads the rows through the online store
  those views name. Nothing on the request path looks at a view's state, so a lookup never
  fails because a view is being materialized; the rows it reads are the last-materialized ones
  (the online store's writes are per-row upserts, so a half-written window gives old or new
  values per post, never nulls).
- **Speed.** ``get_online_features`` converts every value to Python and back (measured: 623 ms
  for 1,000 rows of the full feature service). Here values are decoded straight into numpy:
  for the embedded online store (:class:`~smp_platform.infra.sqlite_store.WideSqliteOnlineStore`,
  one row per post and view) by **one SQL statement for every view** (the posts as a ``VALUES``
  list, each view's table left-joined on Feast's serialized entity key), with the
  ``ValueProto`` bytes decoded column by column; for any other online store (Redis in the
  compose stack) through the provider's ``online_read``, decoded per value.

Feast's feature views and online store stay the single source: Feast materializes and pushes
into the tables read here, and the table names, the key encoding and the feature names all come
from Feast and the store class it loads.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from smp_platform.features.schema import ENCODER_ID
from smp_platform.infra.online_store import has_stored_row
from smp_platform.online.block import FeatureBlock

log = logging.getLogger(__name__)

# How long a read waits on an SQLite lock held by a writer (materialize commits) before the
# request is answered 503 with Retry-After: the caller retries, the event loop is not held.
SQLITE_BUSY_SECONDS = 0.5

NUMERIC, BOOL, STRING, EMBEDDING = "numeric", "bool", "string", "embedding"
# Up to this many posts a feature's values are decoded one by one in Python; above it with numpy
# (one lookup: 40 numpy decodes cost ~2 ms, 40 Python ones ~40 us).
SMALL_READ = 16


class OnlineStoreUnavailable(RuntimeError):
    """The online store could not be read (file gone, locked, connection refused...)."""


@dataclass(frozen=True)
class ViewRead:
    """One feature view of the service: the Feast view object and its served features."""

    view: Any  # feast.FeatureView (snapshot)
    features: tuple[str, ...]  # served feature names, sorted (the SQL order)
    kinds: dict[str, str]


def _kind(dtype: Any) -> str:
    from feast.types import Array, Bool, String

    if isinstance(dtype, Array):
        return EMBEDDING
    if dtype == String:
        return STRING
    if dtype == Bool:
        return BOOL
    return NUMERIC


def snapshot_views(store: Any, service_name: str) -> list[ViewRead]:
    """The service's views as Feast's registry holds them now (read fresh, not from a cache)."""
    project = store.project
    registry = store.registry
    service = registry.get_feature_service(service_name, project, allow_cache=False)
    reads = []
    for projection in service.feature_view_projections:
        view = registry.get_feature_view(projection.name, project, allow_cache=False)
        dtypes = {f.name: f.dtype for f in view.features}
        names = tuple(sorted(f.name for f in projection.features))
        reads.append(ViewRead(view, names, {n: _kind(dtypes[n]) for n in names}))
    return reads


class OnlineReader:
    """Reads the features of one feature service for many posts in one call per view."""

    def __init__(self, store: Any, service_name: str) -> None:
        from smp_platform.infra.sqlite_store import (
            WideSqliteOnlineStore,
            string_key_encoder,
            wide_table_name,
        )

        self.service_name = service_name
        self.config = store.config
        self.views = snapshot_views(store, service_name)
        self.online_store = store._get_provider().online_store
        self.columns = [name for read in self.views for name in read.features]
        self._sqlite_path: str | None = None
        if isinstance(self.online_store, WideSqliteOnlineStore):
            self._sqlite_path = WideSqliteOnlineStore._get_db_path(self.config)
        self._tables = [wide_table_name(self.config, read.view) for read in self.views]
        self._key = string_key_encoder(self.config, "post_id")
        # (statement, the (feature, kind) of each column it selects): built on the first read
        # (the file may not exist before), replaced as a whole when the schema changed
        # (complete: every served feature has a column; a plan that lacks one is rebuilt)
        self._plan: tuple[str, list[tuple[str, str]], bool] | None = None
        self._local = threading.local()

    # -- public -------------------------------------------------------------------------
    def read(self, post_ids: Sequence[str]) -> FeatureBlock:
        """The features of ``post_ids``; raises :class:`OnlineStoreUnavailable` on any store
        error (never a half-read block)."""
        post_ids = list(post_ids)
        unique = list(dict.fromkeys(post_ids))
        if len(unique) < len(post_ids):
            return _expand(self.read(unique), post_ids)
        block = FeatureBlock(post_ids, np.zeros(len(post_ids), dtype=bool))
        try:
            if self._sqlite_path is not None:
                self._read_sqlite(block)
            else:
                self._read_provider(block)
        except OnlineStoreUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - any store failure is "unavailable"
            raise OnlineStoreUnavailable(f"{type(error).__name__}: {error}") from error
        return block

    def held(self, samples: dict[str, list[str]]) -> dict[str, int]:
        """Per served view, how many of its sampled post ids (``samples``: view -> ids) the
        online store holds a row of: the live half of the online coverage (``/readyz``,
        ``/metrics``). Raises :class:`OnlineStoreUnavailable` like :meth:`read`."""
        try:
            if self._sqlite_path is not None:
                return self._held_sqlite(samples)
            return self._held_provider(samples)
        except OnlineStoreUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - any store failure is "unavailable"
            raise OnlineStoreUnavailable(f"{type(error).__name__}: {error}") from error

    def _held_sqlite(self, samples: dict[str, list[str]]) -> dict[str, int]:
        from smp_platform.infra.sqlite_store import quote

        conn = self._connection()
        out = {}
        for read, table in zip(self.views, self._tables, strict=True):
            keys = list(map(self._key, dict.fromkeys(samples.get(read.view.name, []))))
            if not keys:
                out[read.view.name] = 0
                continue
            marks = ",".join("?" * len(keys))
            try:
                (count,) = conn.execute(
                    f"SELECT count(*) FROM {quote(table)} WHERE entity_key IN ({marks})", keys
                ).fetchone()
            except sqlite3.OperationalError as error:
                if "no such table" not in str(error):
                    raise
                count = 0  # a store lost or replaced: it holds nothing of this view
            out[read.view.name] = int(count)
        return out

    def _held_provider(self, samples: dict[str, list[str]]) -> dict[str, int]:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        out = {}
        for read in self.views:
            ids = list(dict.fromkeys(samples.get(read.view.name, [])))
            if not ids:
                out[read.view.name] = 0
                continue
            keys = [
                EntityKey(join_keys=["post_id"], entity_values=[Value(string_val=p)])
                for p in ids
            ]
            # one small bookkeeping field: every written row has it
            answer = self.online_store.online_read(self.config, read.view, keys, [ENCODER_ID])
            out[read.view.name] = sum(has_stored_row(values) for _, values in answer)
        return out

    def probe(self) -> None:
        """One read of a key that does not exist: proves the store answers."""
        self.read(["__smp_readiness_probe__"])

    # -- SQLite, one row per post and view: all views in one statement ------------------
    def _connection(self) -> sqlite3.Connection:
        assert self._sqlite_path is not None
        path = self._sqlite_path
        try:
            stat = os.stat(path)
        except OSError as error:
            raise OnlineStoreUnavailable(f"online store {path} is gone: {error}") from error
        identity = (stat.st_dev, stat.st_ino)
        cached = getattr(self._local, "conn", None)
        # A replaced or restored file is a new store: reconnect (an open handle would keep
        # reading the old one).
        if cached is None or cached[0] != identity:
            if cached is not None:
                cached[1].close()
            conn = sqlite3.connect(
                f"file:{path}?mode=ro",
                uri=True,
                timeout=SQLITE_BUSY_SECONDS,
                check_same_thread=False,
            )
            self._local.conn = (identity, conn)
            return conn
        return cached[1]  # type: ignore[no-any-return]

    def _select(self, conn: sqlite3.Connection) -> tuple[str, list[tuple[str, str]], bool]:
        """``SELECT <every served column of every view> FROM keys LEFT JOIN <each view's
        table>``: the tables and their columns as the store holds them now (a feature the
        table has no column for yet reads as null)."""
        from smp_platform.infra.sqlite_store import feature_column, quote, table_features

        columns = []
        joins = []
        read_columns = []
        times = []
        for i, read in enumerate(self.views):
            table = self._tables[i]
            stored = table_features(conn, table)
            joins.append(f"LEFT JOIN {quote(table)} AS t{i} ON t{i}.entity_key = k.key")
            times += [f"coalesce(t{i}.event_ts, 0)", f"coalesce(t{i}.created_ts, 0)"]
            for name in read.features:
                if name in stored:
                    columns.append(f"t{i}.{feature_column(name)}")
                    read_columns.append((name, read.kinds[name]))
        # the last column: the newest event or write time of the post's rows (features_as_of);
        # Feast's SQLite adapter stores both as UTC epoch seconds
        columns.append(f"nullif(max({', '.join(times)}), 0)")
        select = f"SELECT {', '.join(columns)} FROM k {' '.join(joins)} ORDER BY k.i"
        return select, read_columns, len(read_columns) == len(self.columns)

    def _read_sqlite(self, block: FeatureBlock) -> None:
        keys = list(map(self._key, block.post_ids))
        conn = self._connection()
        n = len(block)
        values = ", ".join(f"({i}, ?)" for i in range(n))

        def fetch(plan: tuple[str, Any, bool]) -> list[tuple[Any, ...]]:
            return conn.execute(f"WITH k(i, key) AS (VALUES {values}) {plan[0]}", keys).fetchall()

        plan = self._plan if self._plan and self._plan[2] else self._select(conn)
        try:
            rows = fetch(plan)
        except sqlite3.OperationalError as error:
            if "no such column" not in str(error) and "no such table" not in str(error):
                raise
            # the views were applied again since this reader was built: read the schema again
            plan = self._select(conn)
            try:
                rows = fetch(plan)
            except sqlite3.OperationalError as again:
                if "no such table" not in str(again):
                    raise
                raise OnlineStoreUnavailable(
                    f"{again}: the online store has not been set up for these feature views "
                    "(a data dir from before the one-row-per-post layout, or never refreshed): "
                    "run `smp refresh` once, it applies the definitions and moves the rows"
                ) from again
        self._plan = plan
        if len(rows) != n:
            raise OnlineStoreUnavailable(f"read {len(rows)} rows for {n} posts")
        if not n:
            return
        *columns, as_of = zip(*rows, strict=True)
        block.as_of = [_iso_utc(t) for t in as_of]
        for (name, kind), column in zip(plan[1], columns, strict=True):
            _native_into(block, name, kind, column)

    # -- any other online store: the provider's online_read --------------------------------
    def _read_provider(self, block: FeatureBlock) -> None:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        keys = [
            EntityKey(join_keys=["post_id"], entity_values=[Value(string_val=p)])
            for p in block.post_ids
        ]
        n = len(block)
        newest: list[Any] = [None] * n
        for read in self.views:
            answer = self.online_store.online_read(
                self.config, read.view, keys, list(read.features)
            )
            for i, (ts, row) in enumerate(answer):
                if row and ts is not None and (newest[i] is None or ts > newest[i]):
                    newest[i] = ts
            for name in read.features:
                positions = []
                values = []
                for i, (_, row) in enumerate(answer):
                    if row and name in row:
                        positions.append(i)
                        values.append(row[name].SerializeToString())
                _decode_into(block, name, read.kinds[name], positions, values, n)
        # Feast's Redis store keeps each view's event time only (no write time)
        block.as_of = [_iso_utc(t) for t in newest]


def _iso_utc(value: Any) -> str | None:
    """A store's row time as ISO-8601 UTC with a ``Z``: epoch seconds (SQLite), naive UTC
    text, or a datetime (Redis); None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        return value.replace(" ", "T", 1) + "Z"
    if getattr(value, "tzinfo", None) is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"{value.isoformat()}Z"


def _expand(block: FeatureBlock, post_ids: list[str]) -> FeatureBlock:
    """A block of unique posts -> the same rows for ``post_ids`` (which repeat some)."""
    where = {p: i for i, p in enumerate(block.post_ids)}
    rows = [where[p] for p in post_ids]
    return FeatureBlock(
        post_ids,
        block.found[rows],
        {name: values[rows] for name, values in block.numeric.items()},
        {name: [values[i] for i in rows] for name, values in block.strings.items()},
        {name: [values[i] for i in rows] for name, values in block.embeddings.items()},
        None if block.as_of is None else [block.as_of[i] for i in rows],
    )


# -- ValueProto bytes -> numpy --------------------------------------------------------------
# Wire tags of feast.types.Value's oneof fields (Value.proto): double_val = 5 (fixed64),
# float_val = 6 (fixed32), int64_val = 4 and int32_val = 3 and bool_val = 7 (varint),
# string_val = 2 (length-delimited), float_list_val = 16 (length-delimited FloatList, whose
# field 1 is a packed float).
_DOUBLE_TAG = 0x29
_DOUBLE = struct.Struct("<d")
_FLOAT_TAG = 0x35
_INT32_TAG = 0x18
_VARINT_TAGS = (0x20, _INT32_TAG, 0x38)  # int64_val, int32_val, bool_val
_FLOAT_LIST_TAG = b"\x82\x01"


def _decode_into(
    block: FeatureBlock,
    name: str,
    kind: str,
    positions: list[int],
    values: list[bytes],
    n: int,
) -> None:
    """Decode one feature's values into ``block``; a post with any non-null value is found."""
    if kind in (NUMERIC, BOOL):
        out = np.full(n, np.nan)
        if positions:
            out[positions] = _decode_numbers(values)
        block.numeric[name] = out
        block.found |= ~np.isnan(out)
    elif kind == STRING:
        strings: list[str | None] = [None] * n
        for i, value in zip(positions, values, strict=True):
            text = _decode_string(value)
            strings[i] = text
            if text is not None:
                block.found[i] = True
        block.strings[name] = strings
    else:
        vectors: list[np.ndarray | None] = [None] * n
        for i, vector in zip(positions, _decode_float_lists(values), strict=True):
            vectors[i] = vector
            if vector is not None:
                block.found[i] = True
        block.embeddings[name] = vectors


def _native_into(block: FeatureBlock, name: str, kind: str, column: Sequence[Any]) -> None:
    """One feature of every post, as the wide SQLite store holds it: SQLite's own numbers and
    strings, NULL, or serialized ValueProto bytes (lists; rows moved from Feast's layout)."""
    n = len(column)
    if kind in (NUMERIC, BOOL):
        if bytes in set(map(type, column)):
            # Asked first, never left to numpy: it parses bytes as text, and a serialized
            # ValueProto can read as a number (int64 49 is b" 1", which it takes for 1.0).
            numbers = np.array([_number(v) for v in column], dtype=np.float64)
        else:
            numbers = np.array(column, dtype=np.float64)  # None -> NaN
        block.numeric[name] = numbers
        block.found |= ~np.isnan(numbers)
        return
    if kind == STRING:
        strings = list(column)
        if not {type(v) for v in strings} <= {str, type(None)}:
            strings = [v if v is None or isinstance(v, str) else _string(v) for v in strings]
        block.strings[name] = strings
        present = [i for i, v in enumerate(strings) if v is not None]
        block.found[present] = True
        return
    positions = [i for i, v in enumerate(column) if v is not None]
    _decode_into(block, name, kind, positions, [column[i] for i in positions], n)


def _number(stored: Any) -> float:
    if stored is None:
        return math.nan
    if isinstance(stored, bytes):
        return _decode_number(stored)
    return float(stored)


def _string(stored: Any) -> str | None:
    if isinstance(stored, bytes):
        return _decode_string(stored)
    return None if stored is None else str(stored)


def _python_value(value: bytes) -> Any:
    from feast.protos.feast.types.Value_pb2 import Value

    proto = Value.FromString(value)
    which = proto.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    if which.endswith("_list_val"):
        return list(getattr(proto, which).val)
    return getattr(proto, which)


def _decode_numbers(values: list[bytes]) -> np.ndarray:
    """float64 per value (bools as 0/1, nulls NaN), decoded with numpy per value length.

    1,000 posts x 40 numeric features: one Python call per value costs ~40 ms, this ~1 ms.
    """
    count = len(values)
    if count <= SMALL_READ:
        return np.array([_decode_number(v) for v in values], dtype=np.float64)
    out = np.full(count, np.nan)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=count)
    data = np.frombuffer(b"".join(values), dtype=np.uint8)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if count else lengths
    done = np.zeros(count, dtype=bool)
    done[lengths == 0] = True  # Feast writes a null as an empty Value
    for length in np.unique(lengths):
        if length < 2:
            continue
        rows = np.flatnonzero(lengths == length)
        raw = data[starts[rows, None] + np.arange(length)]
        tag = raw[:, 0]
        if length == 9:
            doubles = tag == _DOUBLE_TAG
            out[rows[doubles]] = raw[doubles, 1:].copy().view("<f8")[:, 0]
            done[rows[doubles]] = True
        if length == 5:
            floats = tag == _FLOAT_TAG
            out[rows[floats]] = raw[floats, 1:].copy().view("<f4")[:, 0]
            done[rows[floats]] = True
        varints = np.isin(tag, _VARINT_TAGS)
        if varints.any() and length <= 11:
            body = raw[varints, 1:].astype(np.uint64)
            # a well-formed varint has the continuation bit on every byte but its last
            if (body[:, :-1] >= 0x80).all() and (body[:, -1] < 0x80).all():
                shifts = (7 * np.arange(length - 1)).astype(np.uint64)
                number = np.bitwise_or.reduce((body & np.uint64(0x7F)) << shifts, axis=1)
                signed = number.view(np.int64)
                is_int32 = tag[varints] == _INT32_TAG
                out[rows[varints]] = np.where(is_int32, signed.astype(np.int32), signed)
                done[rows[varints]] = True
    for i in np.flatnonzero(~done):
        python = _python_value(values[i])
        out[i] = np.nan if python is None else float(python)
    return out


def _decode_number(value: bytes) -> float:
    """One value (the per-request path of a single lookup: numpy costs more than it saves)."""
    size = len(value)
    if size == 0:
        return math.nan
    tag = value[0]
    if tag == _DOUBLE_TAG and size == 9:
        return float(_DOUBLE.unpack_from(value, 1)[0])
    if tag in _VARINT_TAGS and size <= 11:
        end, number = _varint(value, 1)
        if end == size:
            if number >= 1 << 63:
                number -= 1 << 64
            if tag == _INT32_TAG:
                number = (number + (1 << 31)) % (1 << 32) - (1 << 31)
            return float(number)
    python = _python_value(value)
    return math.nan if python is None else float(python)


def _decode_string(value: bytes) -> str | None:
    # tag 0x12, one length byte, the UTF-8 bytes: the common short string
    if len(value) >= 2 and value[0] == 0x12 and value[1] < 0x80 and len(value) == value[1] + 2:
        return value[2:].decode("utf-8")
    python = _python_value(value)
    return None if python is None else str(python)


def _decode_float_lists(values: list[bytes]) -> list[np.ndarray | None]:
    """float32 vectors; a list of same-length packed FloatLists is one numpy view."""
    if not values:
        return []
    first = values[0]
    header = _float_list_header(first)
    if header is not None and all(len(v) == len(first) for v in values):
        width = len(first)
        raw = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), width)
        if (raw[:, :header] == raw[0, :header]).all():
            floats = raw[:, header:].copy().view("<f4").astype(np.float32)
            return list(floats)
    out: list[np.ndarray | None] = []
    for value in values:
        python = _python_value(value)
        out.append(None if python is None else np.asarray(python, dtype=np.float32))
    return out


def _float_list_header(value: bytes) -> int | None:
    """Bytes before the packed floats of a serialized float_list_val, or None if not one."""
    if not value.startswith(_FLOAT_LIST_TAG):
        return None
    pos, _ = _varint(value, 2)
    if pos >= len(value) or value[pos] != 0x0A:
        return None
    pos, length = _varint(value, pos + 1)
    if length % 4 or pos + length != len(value):
        return None
    return pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return pos, result
