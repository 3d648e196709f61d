"""Feast access: the offline parquet parts, the registry, materialization and online reads.

One :class:`FeatureStoreGateway` per process and settings. The Feast objects are those of the
registered feature groups (``feature_repo.definitions``); the Feast configuration is built from
settings (embedded: a file registry under the data dir; compose: a SQL registry on Postgres;
the online store by ``settings.online_store``, else the profile's: SQLite under the data dir or
Redis) and also written to ``<data dir>/feast/feature_store.yaml`` so the ``feast`` CLI sees
the same store.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import feature_repo
from feature_repo.data_sources import PUSHED_EVENT_TIME, push_source_name
from smp_platform.core.config import Settings
from smp_platform.features.registry import groups_for
from smp_platform.features.schema import (
    CREATED_AT,
    ENCODER_ID,
    EVENT_TIMESTAMP,
    INPUT_HASH,
    POST_ID,
    Dtype,
    View,
)
from smp_platform.infra.online_store import ONLINE_STORES, has_stored_row

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore
    from feast.repo_config import RepoConfig

log = logging.getLogger(__name__)

PLACEHOLDER_PART = "_schema.parquet"
# Keys per online read of the online-store check (one Redis pipeline, a few SQL statements).
ONLINE_CHECK_CHUNK = 5_000
APPLIED_MARKER = "applied.sha256"  # fingerprint of the definitions + config last applied
# Environment variables the rendered feature_store.yaml references instead of secret values.
POSTGRES_DSN_ENV = "SMP_COMPOSE__POSTGRES_DSN"
REDIS_PASSWORD_ENV = "SMP_FEAST_REDIS_PASSWORD"


_ARROW_TYPES = {
    Dtype.FLOAT64: pa.float64(),
    Dtype.FLOAT32: pa.float32(),
    Dtype.INT64: pa.int64(),
    Dtype.STRING: pa.string(),
    Dtype.BOOL: pa.bool_(),
    Dtype.FLOAT32_ARRAY: pa.list_(pa.float32()),
}


def view_schema(view: View) -> pa.Schema:
    """The arrow schema of a view's parquet parts, derived from the view's field dtypes."""
    fields = [
        pa.field(POST_ID, pa.string(), nullable=False),
        pa.field(EVENT_TIMESTAMP, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(CREATED_AT, pa.timestamp("us", tz="UTC"), nullable=False),
    ]
    fields += [pa.field(f.name, _ARROW_TYPES[f.dtype]) for f in view.stored_fields]
    return pa.schema(fields)


def _utc_us(values: Any) -> pd.Series:
    ts = pd.to_datetime(pd.Series(values), utc=True)
    return ts.dt.floor("us")


def to_view_table(view: View, frame: pd.DataFrame, created_at: datetime) -> pa.Table:
    """Cast a feature frame to the view's schema (raises on a missing column: a bug)."""
    schema = view_schema(view)
    data = frame.copy()
    data[EVENT_TIMESTAMP] = _utc_us(data[EVENT_TIMESTAMP]).to_numpy()
    created = pd.Timestamp(created_at)
    created = created.tz_localize("UTC") if created.tzinfo is None else created.tz_convert("UTC")
    data[CREATED_AT] = created.floor("us")
    missing = [name for name in schema.names if name not in data.columns]
    if missing:
        raise KeyError(f"{view.name}: feature frame lacks columns {missing}")
    arrays = []
    for field in schema:
        column = data[field.name]
        if pa.types.is_list(field.type):
            values = [
                None
                if v is None or (isinstance(v, float) and pd.isna(v))
                else [float(x) for x in v]
                for v in column
            ]
            arrays.append(pa.array(values, type=field.type))
        elif pa.types.is_timestamp(field.type):
            arrays.append(pa.array(pd.to_datetime(column, utc=True), type=field.type))
        else:
            values = column.astype(object).where(column.notna(), None)
            arrays.append(pa.array(values.tolist(), type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def batch_key(frame: pd.DataFrame) -> str:
    """Content name of a part: same posts and same inputs -> same file (re-runs overwrite)."""
    digest = hashlib.sha1()
    for post_id, input_hash, encoder_id in sorted(
        zip(frame[POST_ID], frame[INPUT_HASH], frame[ENCODER_ID], strict=True)
    ):
        digest.update(f"{post_id}|{input_hash}|{encoder_id}\n".encode())
    return digest.hexdigest()[:20]


class FeatureStoreGateway:
    """The platform's only door to Feast."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.groups = groups_for(settings)
        self._services: dict[str, FeatureService] = {}

    # -- configuration -------------------------------------------------------------------
    def repo_config(self) -> RepoConfig:
        from feast.repo_config import RepoConfig

        s = self.settings
        s.feast_dir.mkdir(parents=True, exist_ok=True)
        return RepoConfig(**self.config_dict(), repo_path=s.feast_dir)

    def config_dict(self, *, for_file: bool = False) -> dict[str, Any]:
        """Feast's configuration. ``for_file``: secrets as ``${VAR}`` references (Feast expands
        environment variables when it reads ``feature_store.yaml``), never their values."""
        s = self.settings
        if s.profile == "compose":
            registry: Any = {
                "registry_type": "sql",
                "path": f"${{{POSTGRES_DSN_ENV}}}"
                if for_file
                else s.compose.postgres_dsn.get_secret_value(),
                "cache_ttl_seconds": 10,
                "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
            }
        else:
            registry = {
                "registry_type": "file",
                "path": str(s.feast_dir / "registry.db"),
                # Written by atomic replace: the service reads it while a refresh writes it.
                "registry_store_type": "smp_platform.infra.feast_registry.AtomicFileRegistryStore",
                "cache_ttl_seconds": 10,
            }
        return {
            "project": s.feast_project,
            "provider": "local",
            "registry": registry,
            "online_store": self.online_store_config(for_file=for_file),
            "offline_store": {"type": "duckdb"},
            "entity_key_serialization_version": 3,
        }

    @property
    def online_store_kind(self) -> str:
        """``sqlite``, ``redis`` or the dotted path of a store class of the user's own."""
        s = self.settings
        return s.online_store or ("redis" if s.profile == "compose" else "sqlite")

    def online_store_config(self, *, for_file: bool = False) -> dict[str, Any]:
        """Feast's ``online_store`` section (``for_file``: secrets as ``${VAR}`` references)."""
        s = self.settings
        kind = self.online_store_kind
        if kind == "redis":
            online: dict[str, Any] = {
                "type": "redis",
                "connection_string": _redis_connection_string(
                    s.compose.redis_url.get_secret_value(), password_ref=for_file
                ),
                # Feast's Redis store skips a write whose event time is not newer than the stored
                # one. A post's event time is its publication time, so a post recomputed by a
                # later refresh (a new label of its author, a new encoder) was never updated in
                # Redis. Materialization writes the latest row per post, one writer at a time
                # (writer_lock), so the newest computation must always win.
                "skip_dedup": True,
            }
        elif kind == "sqlite":
            # Feast's SQLite store with one row per post and view (smp_platform.infra.sqlite_store)
            online = {"type": ONLINE_STORES["sqlite"], "path": str(s.feast_dir / "online.db")}
        else:
            online = {"type": kind}
        return {**online, **s.online_store_options}

    @cached_property
    def store(self) -> FeatureStore:
        from feast import FeatureStore

        return FeatureStore(config=self.repo_config())

    # -- registry ------------------------------------------------------------------------
    def apply(self) -> bool:
        """Register entity, views and services; every view gets an empty schema part so its
        glob always matches (a view whose encoder is switched off reads as all-null). Also
        renders ``<data dir>/feast/`` as a repo the ``feast`` CLI can use (see :meth:`render`).

        Skipped (returns False) when the definitions and the store's configuration are those
        of the last apply: an up-to-date refresh pays no registry rewrite.
        """
        self.settings.ensure_dirs()
        for view in self.groups.views:
            view_dir = self.settings.offline_dir / view.name
            view_dir.mkdir(parents=True, exist_ok=True)
            placeholder = view_dir / PLACEHOLDER_PART
            if not placeholder.exists():
                pq.write_table(view_schema(view).empty_table(), placeholder)
        fingerprint = self.definitions_fingerprint()
        marker = self.settings.feast_dir / APPLIED_MARKER
        rendered = self.settings.feast_dir / "feature_store.yaml"
        registry_file = self.settings.feast_dir / "registry.db"
        if (
            marker.exists()
            and marker.read_text(encoding="utf-8").strip() == fingerprint
            and rendered.exists()
            and (self.settings.profile != "embedded" or registry_file.exists())
        ):
            return False
        self.render()
        self.store.apply(feature_repo.definitions(self.settings))
        if self.online_store_kind == "sqlite":
            _use_wal(self.settings.feast_dir / "online.db")
        _write_atomically(marker, fingerprint)
        return True

    def definitions_fingerprint(self) -> str:
        """A hash of what the applied objects are built from: the ``feature_repo`` sources, the
        registered groups' declarations, the settings they read, the store's configuration
        (secrets only as part of the hash) and Feast's version. Computed without importing
        Feast: importing it costs seconds (its typeguard-instrumented classes are compiled at
        import), which an up-to-date refresh should not pay."""
        import json
        from importlib.metadata import version

        digest = hashlib.sha256()
        for source in sorted(Path(feature_repo.__file__).parent.glob("*.py")):
            digest.update(source.name.encode())
            digest.update(source.read_bytes())
        inputs = {
            "groups": self.groups.declaration(),
            "config": self.config_dict(),
            # the service's settings (its push token) are no part of the Feast objects
            "settings": self.settings.model_dump(mode="json", exclude={"compose", "service"}),
            "root": str(self.settings.root),
            "feast": version("feast"),
        }
        digest.update(json.dumps(inputs, sort_keys=True, default=str).encode())
        return digest.hexdigest()

    def render(self) -> Path:
        """``feature_store.yaml`` plus a one-call ``repo.py`` under ``<data dir>/feast/``, so
        ``feast -c <data dir>/feast ...`` sees this store and these definitions."""
        import yaml

        s = self.settings
        s.feast_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(
            s.feast_dir / "feature_store.yaml",
            yaml.safe_dump(self.config_dict(for_file=True), sort_keys=False),
        )
        # Only what locates the store and names its groups: everything else (secrets included)
        # comes from SMP_* env. A group of the user's own must be importable where `feast` runs.
        overrides = {
            "data_dir": str(s.root),
            "profile": s.profile,
            "feast_project": s.feast_project,
            "feature_groups": list(s.feature_groups),
        }
        _write_atomically(
            s.feast_dir / "repo.py",
            '"""Rendered by smp_platform.infra.feast_store (do not edit): this data dir\'s '
            'Feast objects."""\n'
            "\n"
            "from feature_repo import definitions\n"
            "from smp_platform.core.config import Settings\n"
            "\n"
            f"for _obj in definitions(Settings(**{overrides!r})):\n"
            '    globals()[f"{type(_obj).__name__}_{_obj.name}"] = _obj\n',
        )
        return s.feast_dir

    def feature_service(self, name: str) -> FeatureService:
        if name not in self._services:
            self._services[name] = self.store.get_feature_service(name)
        return self._services[name]

    # -- offline -------------------------------------------------------------------------
    def view_glob(self, view_name: str) -> str:
        return str(self.settings.offline_dir / view_name / "*.parquet")

    def write_view(self, view_name: str, frame: pd.DataFrame, created_at: datetime) -> Path:
        """Write one batch of a view as a parquet part (atomic rename; idempotent name)."""
        table = to_view_table(self.groups.view(view_name), frame, created_at)
        path = self.settings.offline_dir / view_name / f"part-{batch_key(frame)}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.tmp")
        try:
            pq.write_table(table, tmp)
        except BaseException:
            # a full disk (ENOSPC) or a kill mid-write: leave no half part taking the space
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(path)
        return path

    def current_rows(self, view_name: str) -> pd.DataFrame:
        """The latest stored row per post: post_id, input_hash, encoder_id, event_timestamp."""
        import duckdb

        # The glob is a parameter: a data dir may contain quotes.
        query = f"""
            SELECT {POST_ID}, {INPUT_HASH}, {ENCODER_ID}, {EVENT_TIMESTAMP}
            FROM read_parquet($glob)
            QUALIFY row_number() OVER (
                PARTITION BY {POST_ID} ORDER BY {EVENT_TIMESTAMP} DESC, {CREATED_AT} DESC) = 1
        """
        with duckdb.connect() as con:
            return con.execute(query, {"glob": self.view_glob(view_name)}).df()

    def row_count(self, view_name: str) -> int:
        import duckdb

        with duckdb.connect() as con:
            rows = con.execute(
                "SELECT count(*) FROM read_parquet($glob)", {"glob": self.view_glob(view_name)}
            )
            return int(rows.fetchall()[0][0])

    def historical_features(self, entity_df: pd.DataFrame, service_name: str) -> pd.DataFrame:
        """Point-in-time join of the service's features onto (post_id, event_timestamp)."""
        entities = entity_df.copy()
        entities[EVENT_TIMESTAMP] = _utc_us(entities[EVENT_TIMESTAMP]).to_numpy()
        job = self.store.get_historical_features(
            entity_df=entities, features=self.feature_service(service_name)
        )
        frame = job.to_df()
        return frame.sort_values([EVENT_TIMESTAMP, POST_ID]).reset_index(drop=True)

    # -- parts ---------------------------------------------------------------------------
    def parts(self, view_name: str) -> pd.DataFrame:
        """The view's parquet parts as they are now: part (file name), size, mtime_ns."""
        rows = []
        for path in sorted((self.settings.offline_dir / view_name).glob("part-*.parquet")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # replaced between the listing and the stat
                continue
            rows.append((path.name, stat.st_size, stat.st_mtime_ns))
        return pd.DataFrame(rows, columns=["part", "size", "mtime_ns"]).astype(
            {"part": object, "size": "int64", "mtime_ns": "int64"}
        )

    def part_time_ranges(self, view_name: str, part_names: Sequence[str]) -> pd.DataFrame:
        """part, min_ts, max_ts (event time, naive UTC) of the named parts of a view."""
        import duckdb

        if not part_names:
            return pd.DataFrame(columns=["part", "min_ts", "max_ts"])
        files = [str(self.settings.offline_dir / view_name / name) for name in part_names]
        query = f"""
            SELECT parse_filename(filename) AS part,
                   min({EVENT_TIMESTAMP}) AS min_ts, max({EVENT_TIMESTAMP}) AS max_ts
            FROM read_parquet($files, filename = true) GROUP BY filename
        """
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            frame = con.execute(query, {"files": files}).df()
        for column in ("min_ts", "max_ts"):
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None)
        return frame

    # -- online --------------------------------------------------------------------------
    def materialize(
        self,
        start: datetime,
        end: datetime,
        view_names: Sequence[str] | None = None,
        window: timedelta | None = None,
    ) -> int:
        """Materialize [start, end) in bounded windows (memory stays flat as data grows)."""
        names = list(view_names or (v.name for v in self.groups.views))
        window = window or timedelta(days=self.settings.materialize_window_days)
        bounds = []
        cursor = start
        while cursor < end:
            bounds.append((cursor, min(cursor + window, end)))
            cursor = bounds[-1][1]
        for i, (lower, upper) in enumerate(bounds, start=1):
            # Feast prints its own per-view banners; keep our output to one line per window.
            with contextlib.redirect_stdout(io.StringIO()):
                self.store.materialize(start_date=lower, end_date=upper, feature_views=names)
            log.info(
                "materialized window %d/%d [%s, %s) for %d view(s)",
                i,
                len(bounds),
                lower.isoformat(),
                upper.isoformat(),
                len(names),
            )
        return len(bounds)

    def push_online(self, frames: dict[str, pd.DataFrame], created_at: datetime) -> list[str]:
        """Write fresh posts' rows online through each view's PushSource, stamped with
        :data:`~feature_repo.data_sources.PUSHED_EVENT_TIME` so the nightly row supersedes them.

        A post that already has a row of a view online (a nightly one, or an earlier push) keeps
        it: Redis would skip the older write anyway, SQLite would overwrite, so the check is
        made here for both. Returns the views written. The caller holds the writer lock: no
        materialize runs between the check and the write.
        """
        from feast.data_source import PushMode
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        provider = self.store._get_provider()
        written = []
        for view_name, frame in frames.items():
            view = self.store.get_feature_view(view_name)
            keys = [
                EntityKey(join_keys=[POST_ID], entity_values=[Value(string_val=str(p))])
                for p in frame[POST_ID]
            ]
            stored = provider.online_store.online_read(self.store.config, view, keys, None)
            fresh = [not has_stored_row(values) for _, values in stored]
            rows = frame.loc[fresh]
            if rows.empty:
                continue
            table = to_view_table(
                self.groups.view(view_name),
                rows.assign(**{EVENT_TIMESTAMP: PUSHED_EVENT_TIME}),
                created_at,
            )
            self.store.push(push_source_name(view_name), table.to_pandas(), to=PushMode.ONLINE)
            written.append(view_name)
        return written

    def online_features(self, post_ids: Iterable[str], service_name: str) -> pd.DataFrame:
        rows = [{POST_ID: str(p)} for p in post_ids]
        response = self.store.get_online_features(
            features=self.feature_service(service_name), entity_rows=rows
        )
        return pd.DataFrame(response.to_dict())


    # -- the online store against the offline store (issue 18) -----------------------------
    def online_keys(self, view_name: str, post_ids: Sequence[str]) -> list[tuple[str, str] | None]:
        """(input_hash, encoder_id) of each post's row of the view in the online store, None
        where it holds none: the bookkeeping fields name the row, so a row equal to the
        offline store's latest one is proved without reading its features. Any online store
        (its ``online_read``), in chunks of :data:`ONLINE_CHECK_CHUNK` keys."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        provider = self.store._get_provider()
        view = self.store.get_feature_view(view_name)
        out: list[tuple[str, str] | None] = []
        for start in range(0, len(post_ids), ONLINE_CHECK_CHUNK):
            keys = [
                EntityKey(join_keys=[POST_ID], entity_values=[Value(string_val=str(p))])
                for p in post_ids[start : start + ONLINE_CHECK_CHUNK]
            ]
            answer = provider.online_store.online_read(
                self.store.config, view, keys, [INPUT_HASH, ENCODER_ID]
            )
            for _, values in answer:
                if not has_stored_row(values):
                    out.append(None)
                    continue
                assert values is not None
                out.append((values[INPUT_HASH].string_val, values[ENCODER_ID].string_val))
        return out

    def latest_rows(self, view_name: str, post_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Every column of the latest offline row of each post (of ``post_ids``, else of all),
        as ``materialize`` would put it online: newest event time, then newest write."""
        import duckdb

        where = f"WHERE {POST_ID} IN (SELECT unnest($ids))" if post_ids is not None else ""
        query = f"""
            SELECT * FROM read_parquet($glob) {where}
            QUALIFY row_number() OVER (
                PARTITION BY {POST_ID} ORDER BY {EVENT_TIMESTAMP} DESC, {CREATED_AT} DESC) = 1
            ORDER BY {POST_ID}
        """
        params: dict[str, Any] = {"glob": self.view_glob(view_name)}
        if post_ids is not None:
            params["ids"] = [str(p) for p in post_ids]
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            return con.execute(query, params).df()

    def write_online(self, view_name: str, rows: pd.DataFrame) -> int:
        """Write offline rows (:meth:`latest_rows`) of one view to the online store as they are
        (their event and write times kept): what a materialize of their window would write."""
        if rows.empty:
            return 0
        frame = rows.copy()
        for column in (EVENT_TIMESTAMP, CREATED_AT):
            frame[column] = _utc_us(frame[column])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Feast warns on rows whose features are all null
            self.store.write_to_online_store(view_name, frame)
        return len(frame)


def _redis_connection_string(url: str, *, password_ref: bool = False) -> str:
    """redis://host:port/db -> Feast's 'host:port,db=N' form (``password_ref``: the password
    as a reference to ``$SMP_FEAST_REDIS_PASSWORD``, for files)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or 6379
    db = (parsed.path or "/0").lstrip("/") or "0"
    password = f"${{{REDIS_PASSWORD_ENV}}}" if password_ref else parsed.password
    extra = f",password={password}" if parsed.password else ""
    return f"{host}:{port},db={db}{extra}"


def _use_wal(online_db: Path) -> None:
    """The SQLite online store in WAL mode: lookups read while a materialize writes. The mode
    is kept in the database file, so every later connection (Feast's own) uses it."""
    import sqlite3

    if not online_db.exists():
        return
    with contextlib.closing(sqlite3.connect(online_db)) as con:
        con.execute("PRAGMA journal_mode=WAL")


def _write_atomically(path: Path, text: str) -> None:
    """Readers (the ``feast`` CLI, a service) see the old file or the new one, whole."""
    import os

    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def rows_with_features(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Which rows have at least one served feature (Feast answers nulls for an unknown post)."""
    present = [c for c in columns if c in frame.columns]
    if not present:
        return pd.Series(False, index=frame.index)
    return frame[present].notna().any(axis=1)
