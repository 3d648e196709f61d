"""The disk fills up during a refresh (docs/OPERATIONS.md, "The disk is full"): the refresh
says so and exits failed, leaves no half-written part behind, stores nothing twice, and the run
after space is freed completes the work."""

from __future__ import annotations

import errno

import pytest

from smp_platform.core.errors import RefreshFailed
from smp_platform.features.schema import POST_ID

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_a_full_disk_fails_the_refresh_cleanly_and_the_next_one_completes(
    platform, platform_copy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from flows.refresh import run_refresh
    from smp_platform.infra import feast_store
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.pipeline.ingest import ingest
    from smp_platform.pipeline.online_check import check_online
    from smp_platform.pipeline.refresh import check_for_work

    settings = platform_copy
    ingest(settings, "smp-video", platform.unseen_dir, with_labels=False)
    real_write = pq.write_table

    def full_disk(table, where, *args, **kwargs):  # type: ignore[no-untyped-def]
        with open(where, "wb") as half:  # the write gets some bytes down, then the disk is full
            half.write(b"PAR1")
        raise OSError(errno.ENOSPC, "No space left on device", str(where))

    monkeypatch.setattr(feast_store.pq, "write_table", full_disk)
    with pytest.raises(RefreshFailed, match="No space left on device"):
        run_refresh(settings)  # what `smp refresh` and the nightly deployment run
    monkeypatch.setattr(feast_store.pq, "write_table", real_write)

    assert not list(settings.offline_dir.rglob("*.tmp")), "a half-written part was left behind"
    assert any(check_for_work(settings).stale.values())  # the unseen posts are still to do
    summary = run_refresh(settings)  # space freed: the next run does the work
    assert summary.written and not summary.failures
    gateway = FeatureStoreGateway(settings)
    for view in summary.written:  # one row per post: nothing written twice
        assert gateway.row_count(view) == gateway.current_rows(view)[POST_ID].nunique(), view
    assert check_online(settings).complete
    assert not check_for_work(settings).has_work
