"""The prediction service on the trained platform: batch endpoint, readiness, metrics, and the
fast read path equal to Feast's own read and to the registered pyfunc."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

from smp_platform.service.runner import running_service

pytestmark = pytest.mark.integration


def _post_ids(settings) -> list[str]:  # type: ignore[no-untyped-def]
    from smp_platform.infra.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        return warehouse.posts_frame()["post_id"].astype(str).tolist()


def test_fast_read_and_scorer_equal_feast_and_the_pyfunc_on_every_post(platform) -> None:
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.online.scorer import Scorer
    from smp_platform.service.champion import read_champion
    from smp_platform.service.reader import OnlineReader

    settings = platform.settings
    champion = read_champion(settings, None).loaded
    assert champion is not None
    post_ids = [*_post_ids(settings), "NO_SUCH_POST"]
    gateway = FeatureStoreGateway(settings)
    feast = gateway.online_features(post_ids, champion.feature_service)
    block = OnlineReader(gateway.store, champion.feature_service).read(post_ids)
    # every served value equals what Feast's get_online_features returns
    for name, values in block.numeric.items():
        expected = pd.to_numeric(feast[name].astype(object), errors="coerce").to_numpy(float)
        np.testing.assert_array_equal(values, expected, err_msg=name)
    for name, values in block.strings.items():
        assert values == [None if pd.isna(v) else v for v in feast[name]], name
    for name, vectors in block.embeddings.items():
        for got, want in zip(vectors, feast[name], strict=True):
            if want is None:
                assert got is None, name
            else:
                np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32))
    assert block.embeddings  # the full feature service: embeddings are read
    assert block.found.tolist() == [True] * (len(post_ids) - 1) + [False]
    # and the compiled scorer predicts what the registered pyfunc predicts
    known = np.flatnonzero(block.found)
    fast = Scorer(champion.predictor).predict(block, known)
    reference = champion.model.predict(feast.iloc[known][champion.feature_columns])
    np.testing.assert_allclose(fast, np.asarray(reference, dtype=float), rtol=0, atol=1e-9)


def test_batch_answers_in_request_order_with_error_entries(platform) -> None:
    settings = platform.settings
    known = _post_ids(settings)[:30]
    asked = [known[3], "NO_SUCH_POST", known[0], known[3], "bad\x00id", *known[5:10]]
    with running_service(settings) as url:
        batch = httpx.post(f"{url}/v1/posts/popularity:batch", json={"post_ids": asked}, timeout=30)
        singles = {
            p: httpx.get(f"{url}/v1/posts/{p}/popularity", timeout=30).json() for p in known[:10]
        }
    assert batch.status_code == 200
    body = batch.json()
    assert body["model_name"] == settings.train.model_name
    assert body["model_version"] == platform.train_outcome.version
    entries = body["predictions"]
    assert [e["post_id"] for e in entries] == asked
    assert set(entries[1]) == {"post_id", "error"} and "no features" in entries[1]["error"]
    assert set(entries[4]) == {"post_id", "error"} and "non-printable" in entries[4]["error"]
    for entry in entries:
        if entry["post_id"] in singles:
            assert set(entry) == {"post_id", "popularity", "features_as_of"}
            assert entry["popularity"] == singles[entry["post_id"]]["popularity"]
            assert entry["features_as_of"] == singles[entry["post_id"]]["features_as_of"]
    assert entries[0] == entries[3]


def test_batch_limits_answer_json_errors(platform) -> None:
    with running_service(platform.settings) as url:
        too_many = httpx.post(
            f"{url}/v1/posts/popularity:batch",
            json={"post_ids": [f"p{i}" for i in range(1001)]},
            timeout=30,
        )
        full = httpx.post(
            f"{url}/v1/posts/popularity:batch",
            json={"post_ids": [f"p{i}" for i in range(1000)]},
            timeout=30,
        )
        empty = httpx.post(f"{url}/v1/posts/popularity:batch", json={"post_ids": []}, timeout=30)
        not_json = httpx.post(
            f"{url}/v1/posts/popularity:batch",
            content=b"{not json",
            headers={"content-type": "application/json"},
            timeout=30,
        )
        huge = httpx.post(
            f"{url}/v1/posts/popularity:batch",
            content=b'{"post_ids": ["' + b"x" * (3 * 1024 * 1024) + b'"]}',
            headers={"content-type": "application/json"},
            timeout=30,
        )
    assert too_many.status_code == 422 and "post_ids" in too_many.json()["detail"]
    assert full.status_code == 200 and len(full.json()["predictions"]) == 1000
    assert all("error" in e for e in full.json()["predictions"])  # none of them exists
    assert empty.status_code == 422
    assert not_json.status_code == 422 and "detail" in not_json.json()
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]


def test_single_lookup_validates_post_id(platform) -> None:
    with running_service(platform.settings) as url:
        long_id = httpx.get(f"{url}/v1/posts/{'x' * 257}/popularity", timeout=30)
        control = httpx.get(f"{url}/v1/posts/a%07b/popularity", timeout=30)
        at_cap = httpx.get(f"{url}/v1/posts/{'x' * 256}/popularity", timeout=30)
    assert long_id.status_code == 422 and "256" in long_id.json()["detail"]
    assert control.status_code == 422 and "non-printable" in control.json()["detail"]
    assert at_cap.status_code == 404


def test_readiness_and_prometheus_metrics(platform) -> None:
    settings = platform.settings
    post_id = _post_ids(settings)[0]
    with running_service(settings) as url:
        ready = httpx.get(f"{url}/readyz", timeout=30)
        for _ in range(3):
            httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30)
        httpx.get(f"{url}/v1/posts/NO_SUCH_POST/popularity", timeout=30)
        metrics = httpx.get(f"{url}/metrics", timeout=30)
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["reasons"] == []
    assert body["model_version"] == platform.train_outcome.version
    assert body["online_store"] == "ok"
    assert body["registry_checked_seconds_ago"] >= 0  # the registry has been checked
    text = metrics.text
    route = 'route="/v1/posts/{post_id}/popularity"'
    assert f'smp_http_requests_total{{code="200",{route}}} 3.0' in text
    assert f'smp_http_requests_total{{code="404",{route}}} 1.0' in text
    assert f"smp_http_request_seconds_count{{{route}}} 4.0" in text
    assert f"smp_served_model_version {float(platform.train_outcome.version)}" in text
    assert "smp_online_store_errors_total 0.0" in text
