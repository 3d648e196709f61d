"""Fresh posts online in seconds: ``POST /v1/posts`` and ``smp ingest --push`` store a post and
push its request-time features through Feast's PushSource; the lookup answers at once, and after
the nightly refresh the lookup is the batch prediction (``smp predict``'s path) of the nightly
row, on the embedded SQLite online store and on Redis (compose profile)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from smp_platform.core.config import ServiceSettings, Settings
from smp_platform.service.runner import running_service
from smp_platform.testing.feature_frames import builtin_groups
from tests.helpers import WITHOUT_TORCH, compose_profile, write_subset

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "push-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LATE, EARLY = "PUSHED_LATE", "PUSHED_EARLY"


def _rows(folder: Path, kind: str, key: str) -> dict[str, dict]:  # type: ignore[type-arg]
    (path,) = sorted(folder.glob(f"*{kind}*.jsonl"))
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row[key]: row for row in rows}


@dataclass
class Pushed:
    settings: Settings
    train_dir: Path
    version: str
    author: str
    author_posts: int  # the author's posts in the warehouse before any push


def _platform(settings: Settings, root: Path, n: int) -> Pushed:
    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.pipeline.ingest import ingest

    train_dir = write_subset("train", root / "train", n=n)
    ingest(settings, "smp-video", train_dir)
    run_refresh(settings)
    outcome = run_train(settings)
    run_promote(settings, outcome.version)
    return _described(settings, train_dir, outcome.version)


def _described(settings: Settings, train_dir: Path, version: str) -> Pushed:
    posts = _rows(train_dir, "posts", "pid")
    counts: dict[str, int] = {}
    for post in posts.values():
        counts[post["uid"]] = counts.get(post["uid"], 0) + 1
    author = max(sorted(counts), key=lambda uid: counts[uid])
    return Pushed(settings, train_dir, version, author, counts[author])


def _body(platform: Pushed, pid: str, post_time: str, *, extra: str = "") -> dict:  # type: ignore[type-arg]
    """A new post by the platform's most active author (no user block: the author's latest
    stored profile is used, as for a draft), in SMP-Video's fields with its pid."""
    posts = _rows(platform.train_dir, "posts", "pid")
    videos = _rows(platform.train_dir, "videos", "pid")
    latest = max(
        (p for p in posts.values() if p["uid"] == platform.author), key=lambda p: p["post_time"]
    )
    post = {**latest, "pid": pid, "post_time": post_time}
    post["post_content"] = f"{latest['post_content']},fresh{extra}"
    body = {"format": "smp-video", "post": post}
    if latest["pid"] in videos:
        body["video"] = {k: v for k, v in videos[latest["pid"]].items() if k != "pid"}
    return body


def _with_token(settings: Settings) -> Settings:
    return settings.model_copy(update={"service": ServiceSettings(push_token=SecretStr(TOKEN))})


@pytest.fixture(scope="module")
def sqlite_platform(tmp_path_factory: pytest.TempPathFactory, platform) -> Pushed:  # type: ignore[no-untyped-def]
    """The embedded profile with the full feature service (text and perplexity encoders): a
    copy of the session's trained platform (a build of its own cost a full refresh), with a
    push token."""
    import shutil

    root = tmp_path_factory.mktemp("push") / "data"
    # model artifacts stay where the registry says they are (the original data dir)
    shutil.copytree(platform.settings.root, root, ignore=shutil.ignore_patterns("mlartifacts"))
    settings = _with_token(platform.settings.model_copy(update={"data_dir": root}))
    return _described(settings, platform.train_dir, platform.train_outcome.version)


def pushed_views() -> list[str]:
    """The views of the built-in request-time groups (every group but the image one)."""
    return [v.name for g in builtin_groups().request_time for v in g.views]


# -- reading the stores -----------------------------------------------------------------------
def _online_times(settings: Settings, post_id: str) -> dict[str, datetime | None]:
    """The event time of the post's online row per pushed view (None: no row)."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from smp_platform.infra.feast_store import FeatureStoreGateway

    store = FeatureStoreGateway(settings).store
    online = store._get_provider().online_store
    key = EntityKey(join_keys=["post_id"], entity_values=[Value(string_val=post_id)])
    out = {}
    for view in pushed_views():
        ((ts, values),) = online.online_read(store.config, store.get_feature_view(view), [key])
        present = values and any(v.WhichOneof("val") for v in values.values())
        out[view] = None if not present else ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
    return out


def _features(settings: Settings, post_id: str):  # type: ignore[no-untyped-def]
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.service.champion import read_champion
    from smp_platform.service.reader import OnlineReader

    champion = read_champion(settings, None).loaded
    return OnlineReader(FeatureStoreGateway(settings).store, champion.feature_service).read(
        [post_id]
    )


def _count_posts(settings: Settings) -> int:
    from smp_platform.infra.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        return warehouse.count("posts")


# -- the scenario both online stores go through -------------------------------------------------
def _push_served_then_superseded(platform: Pushed, expected_views: set[str]) -> dict[str, float]:
    from feature_repo.data_sources import PUSHED_EVENT_TIME
    from flows.refresh import run_refresh
    from smp_platform.pipeline.predict import predict_posts

    settings = platform.settings
    late = _body(platform, LATE, "2024-06-02 18:30")
    early = _body(platform, EARLY, "2024-06-01 09:15")
    figures: dict[str, float] = {}
    with running_service(settings) as url:
        lookup = lambda pid: httpx.get(f"{url}/v1/posts/{pid}/popularity", timeout=60)  # noqa: E731
        push = lambda body: httpx.post(f"{url}/v1/posts", json=body, headers=AUTH, timeout=300)  # noqa: E731
        assert lookup(LATE).status_code == 404
        push(_body(platform, "PUSHED_WARMUP", "2024-07-01 00:00"))  # loads the encoders once
        started = time.perf_counter()
        pushed = push(late)
        answered = lookup(LATE)
        figures["push_then_lookup_s"] = time.perf_counter() - started
        assert pushed.status_code == 201, pushed.text
        assert pushed.headers["location"] == f"/v1/posts/{LATE}/popularity"
        body = pushed.json()
        assert body["stored"] == "inserted" and body["online"] is True
        assert set(body["pushed_views"]) == expected_views and body["already_online"] == []
        assert answered.status_code == 200, answered.text
        assert answered.json()["model_version"] == platform.version  # answered at once

        # The pushed rows carry the provisional event time, older than any post.
        times = _online_times(settings, LATE)
        assert {v for v, t in times.items() if t is not None} == expected_views
        assert all(t == PUSHED_EVENT_TIME for t in times.values() if t is not None)
        # An earlier post by the same author, pushed after: the late post's pushed row does
        # not count it (it was computed before), the nightly row will.
        assert push(early).status_code == 201
        pushed_late = _features(settings, LATE)
        pushed_early = _features(settings, EARLY)
        assert pushed_late.numeric["author_prior_posts"][0] == platform.author_posts

        # A retry is idempotent; other content under a stored id is refused, nothing written.
        retry = push(late)
        assert retry.status_code == 200, retry.text
        assert retry.json()["stored"] == "unchanged" and retry.json()["pushed_views"] == []
        assert set(retry.json()["already_online"]) == expected_views
        before = _count_posts(settings)
        conflict = push(_body(platform, LATE, "2024-06-02 18:30", extra=",edited"))
        assert conflict.status_code == 409 and "other content" in conflict.json()["detail"]
        assert _count_posts(settings) == before
        pushed_answer = lookup(LATE).json()["popularity"]

        # The nightly refresh computes the full rows and materializes them over the pushed ones.
        summary = run_refresh(settings)
        assert summary.written["post_temporal"] == 3  # the warm-up, LATE and EARLY
        nightly_late = _features(settings, LATE)
        nightly_answer = lookup(LATE).json()
        # A push never overwrites a nightly row: the same post pushed again leaves every view
        again = push(late)
        assert again.status_code == 200, again.text
        assert again.json()["pushed_views"] == []
        assert set(again.json()["already_online"]) == expected_views
        assert lookup(LATE).json() == nightly_answer
    posted_at = datetime(2024, 6, 2, 18, 30, tzinfo=UTC)
    assert all(t == posted_at for t in _online_times(settings, LATE).values() if t is not None)
    assert nightly_late.numeric["author_prior_posts"][0] == platform.author_posts + 1
    # the lookup is now the batch prediction of the nightly row (no skew), for the same model
    batch = predict_posts(settings, [LATE])
    assert nightly_answer["model_version"] == batch["model_version"].iloc[0] == platform.version
    np.testing.assert_allclose(
        nightly_answer["popularity"], batch["popularity"].iloc[0], rtol=0, atol=1e-9
    )
    figures["pushed_minus_nightly"] = pushed_answer - nightly_answer["popularity"]
    # EARLY's inputs did not change after its push: its pushed features are the nightly ones.
    nightly_early = _features(settings, EARLY)
    for name, values in pushed_early.numeric.items():
        if name in ("perplexity", "log_perplexity", "text_tags_similarity"):
            np.testing.assert_allclose(nightly_early.numeric[name], values, rtol=1e-4)
        else:
            np.testing.assert_array_equal(nightly_early.numeric[name], values, err_msg=name)
    assert nightly_early.strings == pushed_early.strings
    return figures


def _print_figures(store: str, figures: dict[str, float]) -> None:
    print(
        f"\n{store}: push + lookup {figures['push_then_lookup_s'] * 1000:.0f} ms; the pushed "
        f"row's popularity minus the nightly row's {figures['pushed_minus_nightly']:+.4f}"
    )


def test_pushed_post_is_served_at_once_then_the_nightly_row_wins_sqlite(
    sqlite_platform: Pushed,
) -> None:
    figures = _push_served_then_superseded(sqlite_platform, set(pushed_views()))
    _print_figures("SQLite", figures)


def test_pushed_post_on_redis_then_the_nightly_row_wins(
    tmp_path: Path, prefect_server: None
) -> None:
    with compose_profile(tmp_path / "data") as (settings, _):
        platform = _platform(_with_token(settings), tmp_path, n=120)
        figures = _push_served_then_superseded(
            platform, {v.name for v in builtin_groups().group("tabular").views}
        )
    _print_figures("Redis", figures)


# -- the token, bad input, the writer lock ------------------------------------------------------
def test_the_endpoint_is_off_without_a_token_and_enforces_it(sqlite_platform: Pushed) -> None:
    settings = sqlite_platform.settings
    body = _body(sqlite_platform, "PUSHED_AUTH", "2024-08-01 10:00")
    off = settings.model_copy(update={"service": ServiceSettings()})
    with running_service(off) as url:
        disabled = httpx.post(f"{url}/v1/posts", json=body, headers=AUTH, timeout=30)
    assert disabled.status_code == 404
    assert "SMP_SERVICE__PUSH_TOKEN" in disabled.json()["detail"]
    with running_service(settings) as url:
        post = lambda headers, payload=body: httpx.post(  # noqa: E731
            f"{url}/v1/posts", json=payload, headers=headers, timeout=60
        )
        missing = post({})
        wrong = post({"Authorization": "Bearer not-the-token"})
        basic = post({"Authorization": f"Basic {TOKEN}"})
        unicode = post({"Authorization": "Bearer jeton-\u00e9".encode()})  # raw UTF-8 bytes
        # bad input is refused with the reason, and nothing is written
        before = _count_posts(settings)
        no_pid = {**body, "post": {k: v for k, v in body["post"].items() if k != "pid"}}
        bad_time = {**body, "post": {**body["post"], "post_time": "yesterday"}}
        not_json = httpx.post(
            f"{url}/v1/posts",
            content=b"{nope",
            headers={**AUTH, "content-type": "application/json"},
        )
        answers = [post(AUTH, no_pid), post(AUTH, bad_time), post(AUTH, {"format": "x"})]
        after = _count_posts(settings)
        lookup = httpx.get(f"{url}/v1/posts/PUSHED_AUTH/popularity", timeout=30)
    for refused in (missing, wrong, basic, unicode):
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith('Bearer realm="smp"')
        assert "bearer token" in refused.json()["detail"]
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert not_json.status_code == 422 and "not JSON" in not_json.json()["detail"]
    assert answers[0].status_code == 422 and "missing id: post.pid" in answers[0].json()["detail"]
    assert answers[1].status_code == 422 and "bad time: post.post_time" in answers[1].text
    assert answers[2].status_code == 422 and "format" in answers[2].json()["detail"]
    assert after == before
    assert lookup.status_code == 404


HOLD_LOCK = """
import sys, time
from smp_platform.core.locking import writer_lock
with writer_lock(sys.argv[1], "refresh (held by the test)", 5):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_push_while_a_writer_holds_the_data_dir_answers_503_and_lookups_go_on(
    sqlite_platform: Pushed,
) -> None:
    settings = sqlite_platform.settings
    stored = next(iter(_rows(sqlite_platform.train_dir, "posts", "pid")))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.root)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with running_service(settings) as url:
            started = time.perf_counter()
            pushing = httpx.post(
                f"{url}/v1/posts",
                json=_body(sqlite_platform, "PUSHED_BUSY", "2024-08-02 10:00"),
                headers=AUTH,
                timeout=60,
            )
            waited = time.perf_counter() - started
            looked_up = [
                httpx.get(f"{url}/v1/posts/{stored}/popularity", timeout=30) for _ in range(3)
            ]
    finally:
        holder.terminate()
        holder.wait(timeout=30)
    assert pushing.status_code == 503, pushing.text
    assert pushing.headers["retry-after"] == str(settings.service.push_retry_after_s)
    assert "refresh (held by the test)" in pushing.json()["detail"]
    assert waited >= settings.service.push_lock_wait_s  # it waited for the lock, then said so
    assert all(r.status_code == 200 for r in looked_up)


def test_cli_ingest_push_stores_and_pushes_a_file_of_posts(
    sqlite_platform: Pushed, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from smp_platform.cli import app

    settings = sqlite_platform.settings
    bodies = [
        _body(sqlite_platform, "PUSHED_CLI_1", "2024-09-01 10:00"),
        _body(sqlite_platform, "PUSHED_CLI_2", "2024-09-01 11:00"),
    ]
    path = tmp_path / "posts.json"
    path.write_text(json.dumps(bodies))
    runner = CliRunner()
    args = ["--data-dir", str(settings.data_dir), "ingest", "--push", str(path)]
    pushed = runner.invoke(app, args)
    assert pushed.exit_code == 0, pushed.output
    lines = pushed.output.strip().splitlines()
    assert [json.loads(line)["post_id"] for line in lines[:2]] == ["PUSHED_CLI_1", "PUSHED_CLI_2"]
    assert lines[-1].endswith("2 post(s) stored, 2 online")
    with running_service(settings) as url:
        answers = [
            httpx.get(f"{url}/v1/posts/{pid}/popularity", timeout=30)
            for pid in ("PUSHED_CLI_1", "PUSHED_CLI_2")
        ]
    assert [a.status_code for a in answers] == [200, 200]
    # the same file again is a retry; a post that is not valid is refused before anything runs
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and '"stored": "unchanged"' in again.output
    bad = tmp_path / "bad.json"
    fresh = _body(sqlite_platform, "PUSHED_CLI_3", "2024-09-01 12:00")  # valid, never stored
    bad.write_text(json.dumps([fresh, {"format": "smp-video", "post": {"uid": "u"}}]))
    refused = runner.invoke(
        app, ["--data-dir", str(settings.data_dir), "ingest", "--push", str(bad)]
    )
    assert refused.exit_code != 0
    assert "missing id: post.pid" in str(refused.exception or refused.output)
    from smp_platform.infra.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        # every post was checked before any was written: the valid first one is not stored
        assert warehouse.stored_post_hashes("PUSHED_CLI_3") is None
        assert warehouse.stored_post_hashes("PUSHED_CLI_1") is not None


LEAN_PUSH = (
    WITHOUT_TORCH
    + """
settings = Settings(data_dir=sys.argv[1], model_cache_dir=sys.argv[2],
                    service={"push_token": sys.argv[3]})
with TestClient(create_app(settings)) as client:
    pushed = client.post("/v1/posts", json=json.loads(sys.argv[4]),
                         headers={"Authorization": "Bearer " + sys.argv[3]})
    lookup = client.get("/v1/posts/PUSHED_LEAN/popularity")
print(json.dumps([pushed.status_code, pushed.json(), lookup.status_code]))
"""
)


def test_without_the_features_extra_a_push_is_stored_but_not_put_online(
    sqlite_platform: Pushed,
) -> None:
    """Half a post online would be predicted from nulls: all the configured views or none."""
    from smp_platform.infra.warehouse import Warehouse

    settings = sqlite_platform.settings
    body = _body(sqlite_platform, "PUSHED_LEAN", "2024-10-01 10:00")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            LEAN_PUSH,
            str(settings.data_dir),
            str(settings.models_dir),
            TOKEN,
            json.dumps(body),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    status, answer, lookup = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == 202, answer
    assert answer["stored"] == "inserted" and answer["online"] is False
    assert "nightly refresh" in answer["not_pushed"] and answer["pushed_views"] == []
    assert lookup == 404
    assert all(t is None for t in _online_times(settings, "PUSHED_LEAN").values())
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        assert warehouse.stored_post_hashes("PUSHED_LEAN") is not None
