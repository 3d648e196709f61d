"""A refresh whose batch fails Great Expectations: that batch is not written, the others are
stored and put online, the run fails (exit 1 semantics: RefreshFailed), and the next refresh
retries exactly the failed posts. Real DuckDB, Feast and Great Expectations; the failing
values come from a group of the test's own that writes an out-of-range value for chosen posts."""

from __future__ import annotations

from pathlib import Path

import pytest

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.core.errors import RefreshFailed
from tests.helpers import share_group_source, write_subset

pytestmark = pytest.mark.integration


def _online_share(settings: Settings, post_ids: list[str]) -> list[float | None]:
    from smp_platform.infra.feast_store import FeatureStoreGateway

    store = FeatureStoreGateway(settings).store
    answer = store.get_online_features(
        features=["post_share:share"], entity_rows=[{"post_id": p} for p in post_ids]
    ).to_dict()
    return answer["share"]


def test_a_batch_that_fails_validation_is_not_written_and_is_retried(tmp_path: Path) -> None:
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.pipeline.ingest import ingest
    from smp_platform.pipeline.refresh import plan_refresh, refresh

    plugin = tmp_path / "share_group.py"
    plugin.write_text(share_group_source(10))
    base = Settings(
        data_dir=tmp_path / "data",
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
        feature_groups=[f"{plugin}:group"],
    )
    base.ensure_dirs()
    ingest(base, "smp-video", write_subset("train", tmp_path / "in", n=30))
    plan = plan_refresh(base)
    batches = [ids for group, ids in plan.batches if group == "share"]
    assert [len(b) for b in batches] == [10, 10, 10]
    poisoned = base.model_copy(update={"feature_options": {"share": {"poison": [batches[1][3]]}}})
    with pytest.raises(RefreshFailed, match=r"post_share: .*expect_column_values_to_be_between"):
        refresh(poisoned)
    stored = FeatureStoreGateway(base).current_rows("post_share")
    # the failing batch wrote nothing; the two others are stored ...
    assert set(stored["post_id"]) == set(batches[0]) | set(batches[2])
    # ... and online
    assert _online_share(base, batches[0] + batches[2]) == [0.5] * 20
    assert _online_share(base, batches[1]) == [None] * 10
    # the next refresh (the input fixed) computes exactly the failed posts
    assert plan_refresh(base).stale["share"] == 10
    summary = refresh(base)
    assert summary.written == {"post_share": 10}
    assert set(FeatureStoreGateway(base).current_rows("post_share")["post_id"]) == {
        p for b in batches for p in b
    }
    assert _online_share(base, batches[1]) == [0.5] * 10
