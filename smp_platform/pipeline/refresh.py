"""The refresh verb: features of new and changed posts, validated, stored, materialized.

For every registered feature group a refresh computes the rows whose inputs or identity changed
since the last run (:func:`staleness`: the input hash covers what the group reads, the
``encoder_id`` its version or weights), validates each batch with Great Expectations, writes
the valid ones as parquet parts of the Feast offline store, and materializes what the online
store lacks (:mod:`smp_platform.pipeline.materialize`). Feature functions return their views'
fields; the bookkeeping is :func:`smp_platform.features.runtime.compute_group`'s.

:func:`refresh` runs it all in this process; ``flows/refresh.py`` runs the same
:func:`plan_refresh` / :func:`process_batch` / :func:`finish_refresh` as Prefect tasks (threads
or Dask); the benchmarks call them stage by stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.errors import RefreshFailed
from smp_platform.core.faults import fail_point, fault_point
from smp_platform.core.status import REFRESH, read_status, write_status
from smp_platform.features.encoders import EncoderUnavailable
from smp_platform.features.group import FeatureGroup, Input
from smp_platform.features.inputs import input_hashes
from smp_platform.features.registry import groups_for
from smp_platform.features.runtime import compute_group, model_of
from smp_platform.features.schema import ENCODER_ID, INPUT_HASH, POST_ID
from smp_platform.infra.feast_store import FeatureStoreGateway
from smp_platform.infra.warehouse import Warehouse
from smp_platform.modeling.psi import DriftReport
from smp_platform.pipeline.materialize import materialize_pending, pending_parts
from smp_platform.pipeline.monitor import refresh_drift_report
from smp_platform.pipeline.online_check import OnlineCoverage, check_and_restore, check_online
from smp_platform.validation import keep_results, validate_batch

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    group: str
    rows_written: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    quarantine: list[tuple[str, str]] = field(default_factory=list)  # (post_id, reason)
    min_ts: datetime | None = None
    max_ts: datetime | None = None
    post_ids: list[str] = field(default_factory=list)  # posts whose rows were written


@dataclass
class RefreshSummary:
    stale: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    disabled: dict[str, str] = field(default_factory=dict)
    quarantined: int = 0
    materialized_windows: int = 0
    drift: str = ""  # the written posts vs the champion's training frame (README, "Drift")
    drift_share: float | None = None  # share of drifted features (None: not measured)
    restored: dict[str, int] = field(default_factory=dict)  # rows put back online, per view
    online: str = ""  # the online store checked against the offline store after the run

    def add(self, result: BatchResult) -> None:
        for view, n in result.rows_written.items():
            self.written[view] = self.written.get(view, 0) + n
        self.failures.extend(result.failures)
        self.quarantined += len(result.quarantine)

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def failure_message(self) -> str:
        """Why the run failed, for the CLI and the flow's Failed state."""
        reasons = "\n".join(f"  - {failure}" for failure in self.failures)
        written = sum(self.written.values())
        return (
            f"refresh failed: {len(self.failures)} batch(es) failed and were not written; "
            f"their posts are retried by the next refresh ({written:,} feature rows of the "
            f"other batches written and put online):\n{reasons}"
        )

    def __str__(self) -> str:
        written = sum(self.written.values())
        parts = [f"{written:,} feature rows written"]
        if self.written:
            parts.append(
                "(" + ", ".join(f"{v} {n:,}" for v, n in sorted(self.written.items())) + ")"
            )
        parts.append(f"{self.materialized_windows} materialization window(s)")
        if self.disabled:
            parts.append(
                "switched off: " + ", ".join(f"{g} ({why})" for g, why in self.disabled.items())
            )
        if self.failures:
            parts.append(f"{len(self.failures)} batch(es) failed and were not written")
        if self.quarantined:
            parts.append(f"{self.quarantined} post(s) quarantined")
        if self.restored:
            restored = ", ".join(f"{v} {n:,}" for v, n in sorted(self.restored.items()))
            parts.append(f"online store restored from the offline store: {restored}")
        if self.online:
            parts.append(self.online)
        if self.drift:
            parts.append(f"drift: {self.drift}")
        return "; ".join(parts)


# -- staleness ---------------------------------------------------------------------------------
@dataclass
class Staleness:
    """Per group: the posts whose current inputs or identity have no stored row in some view,
    and the groups switched off (why). Learned without loading a model."""

    stale: dict[str, pd.DataFrame] = field(default_factory=dict)  # post_id, in time order
    disabled: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {group: len(posts) for group, posts in self.stale.items()}


def stale_posts(posts: pd.DataFrame, stored: pd.DataFrame, encoder_id: str) -> pd.DataFrame:
    """Posts whose current inputs/encoder have no stored row (new, changed or re-encoded)."""
    keys = [POST_ID, INPUT_HASH, ENCODER_ID]
    current = posts[[POST_ID, INPUT_HASH]].assign(**{ENCODER_ID: encoder_id})
    merged = current.merge(stored[keys], on=keys, how="left", indicator=True)
    fresh_ids = set(merged.loc[merged["_merge"] == "both", POST_ID])
    return posts[~posts[POST_ID].isin(fresh_ids)]


def staleness(settings: Settings, gateway: FeatureStoreGateway) -> Staleness:
    """What every registered group has to compute. A post stale in any view of a group is
    stale in all of them: the views of one batch are written one after the other, so a run
    that died between them left some current and others not; the whole group is computed
    again for it, and its views are complete together again."""
    groups = groups_for(settings)
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.post_input_keys()
        needs_labels = any(Input.LABEL_HISTORY in g.reads for g in groups)
        labels = warehouse.author_label_history() if needs_labels else None
    out = Staleness()
    for group in groups:
        try:
            encoder_id = group.encoder_id(settings)
        except EncoderUnavailable as exc:
            out.disabled[group.name] = str(exc)
            continue
        keyed = posts.assign(**{INPUT_HASH: input_hashes(group.reads, posts, labels)})
        stale_ids: set[str] = set()
        for view in group.views:
            stale_ids.update(
                stale_posts(keyed, gateway.current_rows(view.name), encoder_id)[POST_ID]
            )
        out.stale[group.name] = keyed.loc[keyed[POST_ID].isin(stale_ids), [POST_ID]]
    return out


# -- computing one batch -----------------------------------------------------------------------
def process_batch(
    group_name: str, post_ids: list[str], settings: Settings, created_at: datetime
) -> BatchResult:
    """Compute, validate and write one batch of one group (the unit of parallel work)."""
    group = groups_for(settings).group(group_name)
    fail_point(f"batch-error:{group.name}")
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        inputs = warehouse.feature_inputs(post_ids, group.reads)
    computed = compute_group(group, inputs, settings)
    # Set-aside inputs (e.g. an unreadable image) get no row; the refresh records why.
    result = BatchResult(group=group.name, quarantine=computed.set_aside)
    dims = _embedding_dims(group, computed.frames)
    reports = [
        validate_batch(view, computed.frames[view.name], embedding_dims=dims)
        for view in group.views
    ]
    keep_results(settings.root, created_at, post_ids, reports)  # passed or not: the record
    if not all(report.success for report in reports):
        # All views of a group are written together or not at all: no half-refreshed post.
        result.failures.extend(r.summary() for r in reports if not r.success)
        return result
    gateway = FeatureStoreGateway(settings)
    for view in group.views:
        if result.rows_written:
            fault_point("between-views")
        frame = computed.frames[view.name]
        gateway.write_view(view.name, frame, created_at)
        result.rows_written[view.name] = len(frame)
    result.post_ids = [str(p) for p in inputs.posts[POST_ID]]
    ts = pd.to_datetime(inputs.posts["posted_at"], utc=True)
    if len(ts):
        result.min_ts, result.max_ts = ts.min().to_pydatetime(), ts.max().to_pydatetime()
    return result


def _embedding_dims(group: FeatureGroup, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """The batch's most common length of each embedding (every row must have it)."""
    dims: dict[str, int] = {}
    for view in group.views:
        for f in view.fields:
            if f.dtype.is_array and f.name in frames[view.name]:
                lengths = frames[view.name][f.name].dropna().map(len)
                if len(lengths):
                    dims[f.name] = int(lengths.mode().iloc[0])
    return dims


def failed_batch(group: str, post_ids: Sequence[str], error: BaseException) -> BatchResult:
    """A batch that raised: nothing of it was recorded as written; its posts stay stale."""
    first = post_ids[0] if post_ids else "-"
    return BatchResult(
        group=group,
        failures=[f"{group} batch of {len(post_ids)} post(s) from {first}: {error!r}"],
    )


# -- planning and finishing ------------------------------------------------------------------
@dataclass
class RefreshPlan:
    batches: list[tuple[str, list[str]]]
    stale: dict[str, int]
    disabled: dict[str, str]

    def posts(self, group: str) -> int:
        return sum(len(ids) for g, ids in self.batches if g == group)


def plan_refresh(settings: Settings) -> RefreshPlan:
    """Which posts of which group need computing, split in bounded batches.

    A group switched off (no weights configured, or weights that cannot be loaded when there is
    work for it) is reported in ``disabled`` with the reason, and logged as a warning. A group
    with work is loaded and checked on the probe batch here, before any batch is computed: a
    compute that returns columns its views do not declare fails the plan, naming the field.
    """
    gateway = FeatureStoreGateway(settings)
    gateway.apply()
    found = staleness(settings, gateway)
    disabled = {**found.disabled, **ready_groups(settings, found.counts())}
    plan = RefreshPlan(batches=[], stale={}, disabled=disabled)
    for group in groups_for(settings):
        if group.name in disabled:
            log.warning("feature group %s switched off: %s", group.name, disabled[group.name])
            continue
        ids = found.stale[group.name][POST_ID].tolist()
        plan.stale[group.name] = len(ids)
        size = group.refresh_batch_size(settings)
        plan.batches += [(group.name, ids[i : i + size]) for i in range(0, len(ids), size)]
    return plan


def ready_groups(settings: Settings, stale: Mapping[str, int]) -> dict[str, str]:
    """Load (once per process) and check on the probe batch every group with stale posts:
    weights that cannot load switch their group off now, not mid-run (returned: group ->
    why), and a compute that is not what its group declares raises
    :class:`~smp_platform.features.group.FeatureGroupError` before any batch is computed."""
    disabled = {}
    for group in groups_for(settings):
        if stale.get(group.name):
            try:
                model_of(group, settings)
            except EncoderUnavailable as exc:
                disabled[group.name] = str(exc)
    return disabled


def finish_refresh(
    settings: Settings, plan: RefreshPlan, results: list[BatchResult]
) -> RefreshSummary:
    """Record quarantined inputs, materialize what the online store lacks, sum the run up."""
    summary = RefreshSummary(stale=plan.stale, disabled=plan.disabled)
    for result in results:
        summary.add(result)
        for failure in result.failures:
            log.warning(failure)
    if any(r.quarantine for r in results):
        with Warehouse(settings.warehouse_path) as warehouse:
            warehouse.quarantine_features(
                [(pid, f"{r.group}: {why}") for r in results for pid, why in r.quarantine]
            )
    fault_point("before-materialize")
    summary.materialized_windows = materialize_pending(settings)
    # The record says what was put online, the store says what is there (issue 18).
    coverage, summary.restored = check_and_restore(settings)
    summary.online = str(coverage)
    summary.drift, report = measure_drift(settings, [p for r in results for p in r.post_ids])
    summary.drift_share = None if report is None else report.drifted_share
    record_refresh(settings, summary)
    return summary


def measure_drift(settings: Settings, post_ids: list[str]) -> tuple[str, DriftReport | None]:
    """The written posts against the champion's training frame, logged to MLflow. The
    features are stored and online by now: a drift measure that fails (MLflow unreachable)
    is logged and said in the summary, and does not fail the refresh."""
    try:
        return refresh_drift_report(settings, post_ids)
    except Exception as exc:
        log.warning("drift not measured: %r", exc, exc_info=True)
        return f"not measured: {exc!r}", None


def record_refresh(settings: Settings, summary: RefreshSummary | None) -> None:
    """``status/refresh.json`` for the service's metrics: when this refresh finished, whether
    it succeeded, when the last successful one finished, its drift share. ``None``: a refresh
    that found nothing to do (a success: every post is current and online)."""
    now = now_utc().isoformat()
    previous = read_status(settings.root, REFRESH)
    ok = summary is None or not summary.failed
    payload = {
        "finished_at": now,
        "succeeded": ok,
        "last_success_at": now if ok else previous.get("last_success_at"),
        "drift_share": previous.get("drift_share") if summary is None else summary.drift_share,
        "drift": previous.get("drift") if summary is None else summary.drift,
    }
    write_status(settings.root, REFRESH, payload)


BatchDone = Callable[[str, int, "BatchResult"], None]  # (group, posts in the batch, result)


def compute_batches(
    settings: Settings,
    plan: RefreshPlan,
    created_at: datetime,
    on_batch: BatchDone | None = None,
) -> list[BatchResult]:
    """Every batch of the plan, one after the other, in this process."""
    results = []
    for group, ids in plan.batches:
        result = process_batch(group, ids, settings, created_at)
        results.append(result)
        if on_batch is not None:
            on_batch(group, len(ids), result)
    return results


def refresh(settings: Settings, on_batch: BatchDone | None = None) -> RefreshSummary:
    """The whole refresh in this process, without Prefect (the flow runs the same steps).

    Raises :class:`~smp_platform.core.errors.RefreshFailed` after storing what was good when
    any batch failed."""
    plan = plan_refresh(settings)
    results = compute_batches(settings, plan, now_utc(), on_batch)
    summary = finish_refresh(settings, plan, results)
    if summary.failed:
        raise RefreshFailed(summary.failure_message())
    return summary


@dataclass
class WorkCheck:
    """What a refresh would do, learned without loading a model or starting Prefect."""

    stale: dict[str, int]
    pending_parts: int
    disabled: dict[str, str]
    no_warehouse: bool = False
    online: OnlineCoverage | None = None  # the online store against the offline store

    @property
    def has_work(self) -> bool:
        return any(self.stale.values()) or self.pending_parts > 0 or self.online_gaps

    @property
    def online_gaps(self) -> bool:
        """Rows the offline store holds and the online store lacks (a flushed Redis)."""
        return self.online is not None and not self.online.complete

    def __str__(self) -> str:
        if self.no_warehouse:
            return "nothing to do: no posts in this data dir yet (load some with `smp ingest`)"
        if not self.has_work:
            off = f"; switched off: {', '.join(self.disabled)}" if self.disabled else ""
            return f"nothing to do: every post's features are current and online{off}"
        stale = ", ".join(f"{g} {n:,}" for g, n in self.stale.items() if n)
        line = f"stale rows: {stale or 'none'}; {self.pending_parts} part(s) to materialize"
        return f"{line}; {self.online}" if self.online_gaps else line


def check_for_work(settings: Settings) -> WorkCheck:
    """Stale posts per group (identities from settings, no model loaded) and parts pending
    materialization: what the nightly schedule checks before it loads any model."""
    if not settings.warehouse_path.exists():
        return WorkCheck(stale={}, pending_parts=0, disabled={}, no_warehouse=True)
    gateway = FeatureStoreGateway(settings)
    gateway.apply()  # a no-op unless the definitions changed
    found = staleness(settings, gateway)
    pending = sum(len(p) for p in pending_parts(settings).values())
    # Pending parts go online anyway; without any, the store itself is asked what it holds.
    online = check_online(settings, gateway) if not pending else None
    return WorkCheck(
        stale=found.counts(), pending_parts=pending, disabled=found.disabled, online=online
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
