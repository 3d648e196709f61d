"""A lost online store is noticed and put back (issue 18): the embedded SQLite file removed, a
Redis project's keys flushed; the next refresh (or `smp materialize`) restores every post from
the offline store, and the lookups equal the batch prediction again. The answers say how old
their features are (``features_as_of``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import Settings
from smp_platform.core.status import ONLINE, read_status
from smp_platform.pipeline.online_check import check_online
from smp_platform.pipeline.predict import predict_posts
from smp_platform.service.runner import running_service
from tests.helpers import REDIS_URL, compose_profile, write_subset

pytestmark = pytest.mark.integration

SMP = [sys.executable, "-m", "smp_platform.cli"]


def _smp(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        [*SMP, "--data-dir", str(settings.root), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


def _post_ids(train_dir: Path) -> list[str]:
    return pd.read_json(next(train_dir.glob("*posts*")), lines=True)["pid"].astype(str).tolist()


def _lookups(url: str, post_ids: list[str]) -> dict[str, httpx.Response]:
    with httpx.Client(timeout=30) as client:
        return {p: client.get(f"{url}/v1/posts/{p}/popularity") for p in post_ids}


def _remove_online_db(settings: Settings) -> None:
    for path in (settings.root / "feast").glob("online.db*"):
        path.unlink()


def _assert_equal_to_batch(answers: dict[str, httpx.Response], batch: pd.DataFrame) -> None:
    expected = dict(zip(batch["post_id"], batch["popularity"], strict=True))
    assert {p: r.status_code for p, r in answers.items()} == dict.fromkeys(answers, 200)
    got = np.array([answers[p].json()["popularity"] for p in expected])
    np.testing.assert_allclose(got, np.array(list(expected.values())), rtol=0, atol=1e-9)


def test_a_removed_online_store_is_restored_by_the_next_refresh(platform, platform_copy) -> None:
    settings = platform_copy
    post_ids = _post_ids(platform.train_dir)
    batch = predict_posts(settings, post_ids)
    with running_service(settings, poll_seconds=0) as url:
        before = _lookups(url, post_ids[:5])
        _remove_online_db(settings)
        gone = _lookups(url, post_ids[:5])
        ready = httpx.get(f"{url}/readyz", timeout=30)
        # the next refresh: nothing is stale, the record says all is online; the store does not
        out = _smp(settings, "refresh")
        assert "online store restored from the offline store" in out, out
        assert f"post_temporal {len(post_ids):,}" in out, out
        after = _lookups(url, post_ids)
        ready_after = httpx.get(f"{url}/readyz", timeout=30).json()
    assert all(r.status_code == 200 for r in before.values())
    assert all(r.status_code in (404, 503) for r in gone.values()), gone
    assert ready.status_code == 503, ready.text
    _assert_equal_to_batch(after, batch)
    assert check_online(settings).complete
    assert ready_after["status"] == "ready"
    assert set(ready_after["online_coverage"]["views"].values()) == {1.0}
    # and a third run has nothing to do
    assert "nothing to do" in _smp(settings, "refresh")


def test_features_as_of_is_the_newest_time_of_the_posts_rows(platform) -> None:
    post_ids = _post_ids(platform.train_dir)[:3]
    with running_service(platform.settings, poll_seconds=0) as url:
        one = httpx.get(f"{url}/v1/posts/{post_ids[0]}/popularity", timeout=30).json()
        many = httpx.post(
            f"{url}/v1/posts/popularity:batch",
            json={"post_ids": [*post_ids, "NO_SUCH_POST"]},
            timeout=30,
        ).json()
    as_of = datetime.fromisoformat(one["features_as_of"].replace("Z", "+00:00"))
    # rows written by the session's refresh: their write time, not the post's 2024 event time
    status = read_status(platform.settings.root, ONLINE)
    checked = datetime.fromisoformat(status["checked_at"])
    assert as_of <= checked <= datetime.now(UTC)
    assert (checked - as_of).total_seconds() < 3600, (as_of, checked)
    entries = {e["post_id"]: e for e in many["predictions"]}
    assert entries[post_ids[0]]["features_as_of"] == one["features_as_of"]
    assert all(entries[p]["features_as_of"] for p in post_ids)
    assert "features_as_of" not in entries["NO_SUCH_POST"]


def test_materialize_full_rebuilds_a_replaced_store(platform, platform_copy) -> None:
    settings = platform_copy
    n = len(_post_ids(platform.train_dir))
    _remove_online_db(settings)
    out = _smp(settings, "materialize")  # the missing rows only
    assert f"post_temporal {n:,}" in out and "online store complete" in out, out
    _remove_online_db(settings)
    assert not check_online(settings).complete
    out = _smp(settings, "materialize", "--full")
    assert f"post_author {n:,}" in out and "online store complete" in out, out
    assert check_online(settings).complete
    coverage = read_status(settings.root, ONLINE)
    assert {v["missing"] for v in coverage["views"].values()} == {0}


@pytest.fixture
def redis_platform(tmp_path: Path, prefect_server: None) -> Iterator[tuple[Settings, Path]]:
    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.pipeline.ingest import ingest

    with compose_profile(tmp_path / "data") as (settings, _):
        data = write_subset("train", tmp_path / "train", n=120)
        ingest(settings, "smp-video", data)
        run_refresh(settings)
        run_promote(settings, run_train(settings).version)
        yield settings, data


def _flush_project(settings: Settings) -> int:
    """Delete every key of the settings' Feast project: what a FLUSHALL, an eviction under
    ``maxmemory`` or an empty replica does to it, without touching other tests' projects."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{settings.feast_project}", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def test_a_flushed_redis_is_restored_by_the_next_refresh(redis_platform) -> None:
    from flows.refresh import run_refresh
    from smp_platform.pipeline.refresh import check_for_work

    settings, data = redis_platform
    post_ids = _post_ids(data)
    batch = predict_posts(settings, post_ids)
    assert _flush_project(settings) == len(post_ids)
    check = check_for_work(settings)
    assert check.online_gaps and not any(check.stale.values()), check
    with running_service(settings, poll_seconds=0) as url:
        assert all(r.status_code == 404 for r in _lookups(url, post_ids[:5]).values())
        summary = run_refresh(settings)  # the nightly flow, with nothing stale
        after = _lookups(url, post_ids)
    assert summary.restored and set(summary.restored.values()) == {len(post_ids)}, summary
    _assert_equal_to_batch(after, batch)
    assert not check_for_work(settings).has_work


def _samples(text: str, name: str) -> dict[str, float]:
    """{labels: value} of one metric in a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key[len(name) :]] = float(value)
    return out


def test_metrics_export_coverage_and_the_ages_of_the_refresh_and_the_champion(platform) -> None:
    import math

    with running_service(platform.settings, poll_seconds=0) as url:
        text = httpx.get(f"{url}/metrics", timeout=30).text
    coverage = _samples(text, "smp_online_coverage_ratio")
    assert coverage and set(coverage.values()) == {1.0}, coverage
    assert any('view="post_author"' in k for k in coverage), coverage
    (refreshed,) = _samples(text, "smp_seconds_since_last_refresh").values()
    (promoted,) = _samples(text, "smp_seconds_since_champion_promoted").values()
    # both happened in this test session (NaN, the "not known" value, fails these)
    assert 0 <= refreshed < 24 * 3600 and 0 <= promoted < 24 * 3600, (refreshed, promoted)
    (drift,) = _samples(text, "smp_last_refresh_drift_share").values()
    assert math.isnan(drift) or 0 <= drift <= 1, drift  # NaN: no refresh measured it yet
