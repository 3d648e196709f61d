"""Drafts scored on the trained platform: no skew against the stored posts, the explanation adds
up to the prediction, the best-time curve, the CLI and the report, and the lean process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from smp_platform.service.runner import running_service
from tests.helpers import WITHOUT_TORCH

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _rows(folder: Path, kind: str, key: str) -> dict[str, dict]:  # type: ignore[type-arg]
    (path,) = sorted(folder.glob(f"*{kind}*.jsonl"))
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row[key]: row for row in rows}


def _drafts(platform, n: int) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def,type-arg]
    """Stored posts as drafts in SMP-Video's fields (no pid): the authors with the most posts
    first, so the author's history before the draft is exercised."""
    posts = _rows(platform.train_dir, "posts", "pid")
    videos = _rows(platform.train_dir, "videos", "pid")
    users = _rows(platform.train_dir, "users", "uid")
    by_author: dict[str, list[str]] = {}
    for pid, post in posts.items():
        by_author.setdefault(post["uid"], []).append(pid)
    ordered = sorted(posts, key=lambda pid: (-len(by_author[posts[pid]["uid"]]), pid))
    out = []
    for pid in ordered[:n]:
        post = {k: v for k, v in posts[pid].items() if k != "pid"}
        draft = {"format": "smp-video", "post": post, "user": users[post["uid"]]}
        if pid in videos:
            draft["video"] = {k: v for k, v in videos[pid].items() if k != "pid"}
        out.append((pid, draft))
    return out


def test_a_draft_equal_to_a_stored_post_gets_its_prediction(platform) -> None:
    drafts = _drafts(platform, 6)
    with running_service(platform.settings) as url:
        stored = {
            pid: httpx.get(f"{url}/v1/posts/{pid}/popularity", timeout=60).json()
            for pid, _ in drafts
        }
        scored = [httpx.post(f"{url}/v1/popularity:score", json=d, timeout=120) for _, d in drafts]
        # without the user block, the author's profile comes from the warehouse: same answer
        pid, first = drafts[0]
        anonymous = httpx.post(
            f"{url}/v1/popularity:score",
            json={k: v for k, v in first.items() if k != "user"},
            timeout=120,
        )
    for (pid, _), answer in zip(drafts, scored, strict=True):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["author_known"] is True
        assert body["model_version"] == platform.train_outcome.version
        assert body["model_name"] == platform.settings.train.model_name
        np.testing.assert_allclose(
            body["popularity"], stored[pid]["popularity"], rtol=0, atol=1e-4, err_msg=pid
        )
    assert anonymous.status_code == 200
    assert anonymous.json()["popularity"] == scored[0].json()["popularity"]


def test_draft_features_equal_the_stored_features(platform) -> None:
    """Feature by feature: the draft's tabular features equal the stored ones exactly, the
    encoders' outputs to float rounding (the refresh encodes in batches)."""
    from smp_platform.features.registry import groups_for
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.online.authors import AuthorIndex
    from smp_platform.online.block import block_from_frames
    from smp_platform.online.scorer import Scorer
    from smp_platform.online.scoring import (
        Timings,
        draft_frames,
        draft_groups,
        draft_inputs,
        load_draft_models,
    )
    from smp_platform.service.champion import read_champion
    from smp_platform.service.reader import OnlineReader
    from smp_platform.sources import parse_draft

    settings = platform.settings
    champion = read_champion(settings, None).loaded
    scorer = Scorer(champion.predictor)
    reader = OnlineReader(FeatureStoreGateway(settings).store, champion.feature_service)
    authors = AuthorIndex.from_warehouse(settings.warehouse_path)
    groups = groups_for(settings)
    needed, _ = draft_groups(groups, scorer)
    load_draft_models(settings, needed)
    assert {g.name for g in needed if g.has_model} == {"text", "perplexity"}
    for pid, body in _drafts(platform, 4):
        inputs, known = draft_inputs(parse_draft(body), authors)
        frames = draft_frames(needed, inputs, settings, Timings())
        draft = block_from_frames(frames.values(), groups.fields, [pid])
        stored = reader.read([pid])
        assert known
        for name, values in stored.numeric.items():
            if name not in draft.numeric:  # a group a draft has no input for (image)
                assert name == "image_title_similarity" and np.isnan(values).all(), name
                continue
            got = draft.numeric[name]
            if name in ("perplexity", "log_perplexity", "text_tags_similarity"):
                np.testing.assert_allclose(got, values, rtol=1e-4, err_msg=f"{pid} {name}")
            else:
                np.testing.assert_array_equal(got, values, err_msg=f"{pid} {name}")
        assert draft.strings == stored.strings
        for name, vectors in stored.embeddings.items():
            if vectors[0] is None:
                assert draft.embeddings.get(name, [None])[0] is None, name
            else:
                np.testing.assert_allclose(draft.embeddings[name][0], vectors[0], atol=1e-5)


def test_author_index_counts_history_as_the_warehouse_does(platform) -> None:
    from smp_platform.infra.warehouse import Warehouse
    from smp_platform.online.authors import AuthorIndex

    settings = platform.settings
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.posts_frame()
        history = warehouse.author_history(posts["post_id"].tolist())
    index = AuthorIndex.from_warehouse(settings.warehouse_path)
    expected = history.set_index("post_id")
    repeated = 0
    for post in posts.itertuples():
        prior, days = index.history(post.user_id, post.posted_at)
        row = expected.loc[post.post_id]
        assert prior == row["author_prior_posts"], post.post_id
        if pd.isna(row["author_days_since_previous_post"]):
            assert np.isnan(days)
        else:
            repeated += 1
            assert days == pytest.approx(row["author_days_since_previous_post"], abs=1e-9)
    assert repeated > 0  # some authors have several posts in the sample


def test_explanation_adds_up_and_best_time_curve(platform) -> None:
    from smp_platform.features.registry import groups_for

    VIEW_SPECS = {v.name for v in groups_for(platform.settings).views}

    _, draft = _drafts(platform, 1)[0]
    with running_service(platform.settings) as url:
        plain = httpx.post(f"{url}/v1/popularity:score", json=draft, timeout=120).json()
        full = httpx.post(
            f"{url}/v1/popularity:score?explain=true&best_time=true", json=draft, timeout=120
        )
    assert full.status_code == 200, full.text
    body = full.json()
    assert body["popularity"] == pytest.approx(plain["popularity"], abs=1e-9)
    contributions = body["contributions"]
    # SHAP: the base value plus every view's contribution is the prediction
    total = body["base_value"] + sum(c["contribution"] for c in contributions)
    assert total == pytest.approx(body["popularity"], abs=1e-6)
    magnitudes = [abs(c["contribution"]) for c in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    views = {c["view"] for c in contributions}
    assert views <= set(VIEW_SPECS) and {"post_author", "post_text_semantics"} <= views
    for entry in contributions:
        features = [f["contribution"] for f in entry["features"]]
        assert [abs(v) for v in features] == sorted((abs(v) for v in features), reverse=True)
    text = next(c for c in contributions if c["view"] == "post_text_semantics")
    assert any(f["feature"] == "text_embedding" for f in text["features"])  # PCs folded back

    curve = body["curve"]
    assert len(curve) == 48
    start = datetime.fromisoformat(curve[0]["post_time"].replace("Z", "+00:00"))
    assert [p["post_time"] for p in curve] == [
        (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in range(48)
    ]
    assert curve[0]["popularity"] == pytest.approx(body["popularity"], abs=1e-9)
    best = body["best_times"]
    assert len(best) == 5
    assert [p["popularity"] for p in best] == sorted(
        (p["popularity"] for p in curve), reverse=True
    )[:5]
    assert len({round(p["popularity"], 9) for p in curve}) > 1  # the hour matters to the model


def test_unknown_authors_and_invalid_drafts(platform) -> None:
    _, draft = _drafts(platform, 1)[0]
    stranger = {
        "format": "smp-video",
        "post": {**draft["post"], "uid": "USER_NEVER_SEEN"},
    }
    smpd = {
        "format": "smpd",
        "text": {"Uid": "someone@N00", "Title": "sunset over the bay", "Alltags": "sunset bay"},
        "temporalspatial_information": {"Postdate": "1446744647", "Latitude": "0"},
    }
    bad_time = {"format": "smp-video", "post": {**draft["post"], "post_time": "yesterday"}}
    no_uid = {"format": "smp-video", "post": {"post_time": "2022-08-25 16:15"}}
    with running_service(platform.settings) as url:
        post = lambda body: httpx.post(f"{url}/v1/popularity:score", json=body, timeout=120)  # noqa: E731
        unknown, flickr, bad, missing = post(stranger), post(smpd), post(bad_time), post(no_uid)
        wrong_format = post({"format": "instagram", "post": {}})
    assert unknown.status_code == 200 and unknown.json()["author_known"] is False
    assert flickr.status_code == 200 and flickr.json()["author_known"] is False
    assert bad.status_code == 422 and "bad time: post.post_time" in bad.json()["detail"]
    assert missing.status_code == 422 and "missing id: post.uid" in missing.json()["detail"]
    assert wrong_format.status_code == 422 and "format" in wrong_format.json()["detail"]


def test_cli_score_and_report_draw_the_curve(platform, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from smp_platform.cli import app

    pid, draft = _drafts(platform, 1)[0]
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft))
    data_dir = str(platform.settings.data_dir)
    runner = CliRunner()
    scored = runner.invoke(app, ["--data-dir", data_dir, "score", "--input", str(path)])
    assert scored.exit_code == 0, scored.output
    body = json.loads(scored.output)
    with running_service(platform.settings) as url:
        served = httpx.post(f"{url}/v1/popularity:score", json=draft, timeout=120).json()
    assert body == served
    drawn = runner.invoke(app, ["--data-dir", data_dir, "report", "--draft", str(path)])
    assert drawn.exit_code == 0, drawn.output
    png = Path(drawn.output.strip().splitlines()[-1])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


LEAN_SCRIPT = (
    WITHOUT_TORCH
    + """
settings = Settings(data_dir=sys.argv[1], model_cache_dir=sys.argv[2])
with TestClient(create_app(settings)) as client:
    draft = json.loads(sys.argv[3])
    scored = client.post("/v1/popularity:score", json=draft)
    lookup = client.get("/v1/posts/" + sys.argv[4] + "/popularity")
print(json.dumps([scored.status_code, scored.json(), lookup.status_code, "torch" in sys.modules]))
"""
)


def test_without_the_features_extra_drafts_answer_503_and_lookups_still_work(platform) -> None:
    pid, draft = _drafts(platform, 1)[0]
    settings = platform.settings
    models = os.environ["SMP_MODEL_CACHE_DIR"]
    out = subprocess.run(
        [sys.executable, "-c", LEAN_SCRIPT, str(settings.data_dir), models, json.dumps(draft), pid],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    status, body, lookup, torch_imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == 503 and "[features]" in body["detail"], body
    assert lookup == 200 and not torch_imported
