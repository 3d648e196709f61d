"""What a refresh leaves where operators look, on the real stack (DuckDB, Feast, GE, MLflow and
Prefect under the test harness): each batch's Great Expectations result as JSON, the Data Docs
site, and the flow run's Prefect artifacts (summary table, drift, validation table, Data Docs
link), read back with the Prefect client and held against the refresh's own summary.

The story (tabular feature service, no encoders): 300 posts refreshed with one batch of a
test group made to fail validation, no champion yet; a champion trained; 100 newer posts
refreshed (the failed batch retried), their drift measured against the champion.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

import pytest

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.core.errors import RefreshFailed
from smp_platform.pipeline import records
from smp_platform.pipeline.refresh import RefreshSummary
from smp_platform.validation.records import data_docs_index, results_dir
from tests.helpers import fast_train_settings, share_group_source, write_subset

pytestmark = pytest.mark.integration


@dataclass
class Run:
    """One refresh flow run's artifacts, by key."""

    artifacts: dict[str, Any]

    def table(self, key: str) -> list[dict[str, Any]]:
        data = self.artifacts[key].data
        return json.loads(data) if isinstance(data, str) else data

    def by_group(self) -> dict[str, dict[str, Any]]:
        return {row["group"]: row for row in self.table(records.SUMMARY_KEY)}


@dataclass
class Story:
    settings: Settings
    poisoned_post: str
    failed: Run
    second: Run
    second_summary: RefreshSummary


def _latest_run() -> Run:
    """The artifacts of the flow run that published the newest summary (this test's run)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        (newest,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[records.SUMMARY_KEY])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
        run_id: UUID = newest.flow_run_id
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return Run({a.key: a for a in found})


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Story:
    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.pipeline.ingest import ingest
    from smp_platform.pipeline.refresh import plan_refresh

    root = tmp_path_factory.mktemp("records")
    plugin = root / "share_group.py"
    plugin.write_text(share_group_source(100))
    settings = Settings(
        data_dir=root / "data",
        feature_service="popularity_tabular_v1",
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
        feature_groups=[f"{plugin}:group"],
        train=fast_train_settings(),
    )
    settings.ensure_dirs()
    ingest(settings, "smp-video", write_subset("train", root / "first", 300))
    batches = [ids for group, ids in plan_refresh(settings).batches if group == "share"]
    poisoned_post = batches[1][50]
    poisoned = settings.model_copy(
        update={"feature_options": {"share": {"poison": [poisoned_post]}}}
    )
    with pytest.raises(RefreshFailed):
        run_refresh(poisoned)
    failed = _latest_run()
    run_promote(settings, run_train(settings).version)

    ingest(settings, "smp-video", write_subset("train", root / "second", 400))
    second_summary = run_refresh(settings)
    return Story(settings, poisoned_post, failed, _latest_run(), second_summary)


def test_the_summary_table_counts_each_group_and_a_failed_batch(story: Story) -> None:
    groups = story.failed.by_group()
    assert set(groups) == {"tabular", "share", "text", "image", "perplexity", records.TOTAL}
    for off in ("text", "image", "perplexity"):  # no model configured: switched off, and why
        assert groups[off]["switched off"] and groups[off]["stale posts"] == 0
    share = groups["share"]
    assert (share["stale posts"], share["batches"], share["failed batches"]) == (300, 3, 1)
    assert (share["posts written"], share["rows written"]) == (200, 200)
    tabular = groups["tabular"]
    assert tabular["stale posts"] == 300 and tabular["failed batches"] == 0
    assert tabular["posts written"] == 300
    total = groups[records.TOTAL]
    assert total["failed batches"] == 1
    assert total["rows written"] == share["rows written"] + tabular["rows written"]
    assert total["materialization windows"] >= 1
    description = story.failed.artifacts[records.SUMMARY_KEY].description
    assert description.startswith("**Failed**")
    assert "post_share" in description and "expect_column_values_to_be_between" in description
    assert str(data_docs_index(story.settings.root)) in description


def test_the_summary_table_matches_the_returned_summary(story: Story) -> None:
    summary = story.second_summary
    groups = story.second.by_group()
    total = groups[records.TOTAL]
    assert total["rows written"] == sum(summary.written.values())
    assert total["materialization windows"] == summary.materialized_windows
    assert total["quarantined"] == summary.quarantined
    assert total["failed batches"] == 0
    assert {g: groups[g]["stale posts"] for g in summary.stale} == summary.stale
    # the failed batch's 100 posts are retried along with the 100 new ones
    assert groups["share"]["stale posts"] == 200 and groups["tabular"]["stale posts"] == 100
    assert story.second.artifacts[records.SUMMARY_KEY].description.startswith("**Completed**")


def test_each_batch_result_is_kept_as_json_and_listed(story: Story) -> None:
    rows = story.failed.table(records.VALIDATION_KEY)
    failed = [r for r in rows if not r["passed"]]
    assert [r["view"] for r in failed] == ["post_share"]
    assert len([r for r in rows if r["view"] == "post_share"]) == 3  # one per batch
    result = json.loads(Path(failed[0]["result"]).read_text())
    assert result["success"] is False
    unexpected = [
        entry
        for item in result["results"]
        if not item["success"]
        for entry in item["result"].get("unexpected_index_list", [])
    ]
    assert story.poisoned_post in {e["post_id"] for e in unexpected}
    # every file listed lies in this refresh's own folder, and that folder holds nothing else
    folders = {Path(r["result"]).parent for r in rows}
    assert len(folders) == 1 and folders.pop().parent == results_dir(story.settings.root)
    assert len(list(Path(rows[0]["result"]).parent.glob("*.json"))) == len(rows)


def test_the_data_docs_show_every_run_and_the_link_points_at_them(story: Story) -> None:
    index = data_docs_index(story.settings.root)
    link = story.second.artifacts[records.DATA_DOCS_KEY].data
    assert Path(unquote(urlparse(re.search(r"\((.+)\)", link)[1]).path)) == index
    html = index.read_text()
    pages = list(index.parent.glob("validations/post_share/refresh/*/*.html"))
    assert len(pages) == 5  # 3 batches of the failed run, 2 of the second
    assert len({p.parent.name for p in pages}) == 2  # one folder per run
    for page in pages:
        assert page.relative_to(index.parent).as_posix() in html
    assert "Failed" in html  # the failed batch is marked as such


def test_the_drift_artifact_holds_the_table_and_the_plot(story: Story) -> None:
    first = story.failed.artifacts[records.DRIFT_KEY].data
    assert "not measured: no champion yet" in first
    markdown = story.second.artifacts[records.DRIFT_KEY].data
    assert story.second_summary.drift.split(":")[0] in markdown
    assert "| feature | kind | PSI |" in markdown
    # a row per measured feature, as many as the summary line counts
    measured = int(re.search(r"of (\d+) features", story.second_summary.drift)[1])
    assert len(re.findall(r"^\| (?!feature \|)[^-|][^|]* \|", markdown, re.M)) == measured
    plot = Path(unquote(urlparse(re.search(r"Plot: \[[^\]]+\]\(([^)]+)\)", markdown)[1]).path))
    assert plot.name == "drift.png" and plot.stat().st_size > 1000
    assert re.search(r"runs:/[0-9a-f]{32}/drift/drift\.png", markdown)
