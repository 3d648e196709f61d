"""The service keeps serving through registry faults, broken versions and materialization, and
says so honestly when the online store is gone (real MLflow, Feast, SQLite; nothing mocked)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import pytest

from smp_platform.service.runner import running_service

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _post_ids(settings, n: int = 12) -> list[str]:  # type: ignore[no-untyped-def]
    from smp_platform.infra.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        return warehouse.posts_frame()["post_id"].astype(str).tolist()[:n]


def _lookups(url: str, post_ids: list[str]) -> list[httpx.Response]:
    return [httpx.get(f"{url}/v1/posts/{p}/popularity", timeout=30) for p in post_ids]


def _wait_for(predicate, seconds: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_an_unreachable_registry_leaves_the_loaded_version_serving(platform_copy) -> None:
    settings = platform_copy
    post_ids = _post_ids(settings)
    registry_file = settings.root / "mlflow.db"
    with running_service(settings, poll_seconds=0.2) as url:
        before = _lookups(url, post_ids)
        version = before[0].json()["model_version"]
        saved = registry_file.read_bytes()
        # Not a database any more: every registry read fails (as with a locked or lost file).
        registry_file.write_bytes(b"this is not an SQLite database" * 100)
        try:
            # the background check has failed and said so (not merely: time has passed)
            assert _wait_for(
                lambda: httpx.get(f"{url}/readyz", timeout=30).json()["registry_error"]
            ), "the registry outage was never reported"
            during = _lookups(url, post_ids)
            ready = httpx.get(f"{url}/readyz", timeout=30)
        finally:
            registry_file.write_bytes(saved)
        assert _wait_for(lambda: httpx.get(f"{url}/readyz", timeout=30).status_code == 200)
        after = _lookups(url, post_ids)
    assert [r.status_code for r in before] == [200] * len(post_ids)
    assert [r.status_code for r in during] == [200] * len(post_ids)
    assert {r.json()["model_version"] for r in during} == {version}
    assert [r.json() for r in during] == [r.json() for r in before]
    # serving is what readiness means: the registry outage is reported, not fatal
    assert ready.status_code == 200
    assert ready.json()["model_version"] == version
    assert ready.json()["registry_error"]  # the outage is reported, with its reason
    assert [r.json() for r in after] == [r.json() for r in before]


def test_a_new_champion_without_artifacts_leaves_the_old_one_serving(platform_copy) -> None:
    from mlflow import MlflowClient

    settings = platform_copy
    post_ids = _post_ids(settings, 5)
    client = MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )
    name = settings.train.model_name
    old = str(client.get_model_version_by_alias(name, "champion").version)
    with running_service(settings, poll_seconds=0.2) as url:
        before = _lookups(url, post_ids)
        missing = settings.root / "lost-artifacts"
        missing.mkdir()
        broken = client.create_model_version(
            name, source=missing.as_uri(), tags={"feature_service": settings.feature_service}
        )
        shutil.rmtree(missing)
        client.set_registered_model_alias(name, "champion", broken.version)
        assert _wait_for(
            lambda: httpx.get(f"{url}/readyz", timeout=30).json()["registry_error"] is not None
        )
        during = _lookups(url, post_ids)
        ready = httpx.get(f"{url}/readyz", timeout=30)
    assert str(broken.version) != old
    assert [r.status_code for r in during] == [200] * len(post_ids)
    assert {r.json()["model_version"] for r in during} == {old}
    assert [r.json() for r in during] == [r.json() for r in before]
    assert ready.status_code == 200 and ready.json()["model_version"] == old


def test_online_store_gone_is_not_ready_and_lookups_answer_503_with_retry_after(
    platform_copy,
) -> None:
    settings = platform_copy
    post_ids = _post_ids(settings, 3)
    online = settings.feast_dir / "online.db"
    away = online.with_suffix(".away")
    with running_service(settings) as url:
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200
        online.rename(away)
        try:
            ready = httpx.get(f"{url}/readyz", timeout=30)
            lookups = _lookups(url, post_ids)
            batch = httpx.post(
                f"{url}/v1/posts/popularity:batch", json={"post_ids": post_ids}, timeout=30
            )
            health = httpx.get(f"{url}/healthz", timeout=30)
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
        finally:
            away.rename(online)
        back = _lookups(url, post_ids)
    assert ready.status_code == 503
    assert ready.headers["Retry-After"]
    assert any("online store" in reason for reason in ready.json()["reasons"])
    for response in [*lookups, batch]:
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert response.headers["Retry-After"]
        assert "online store" in response.json()["detail"]
    assert health.status_code == 200  # alive, just not ready
    assert "smp_online_store_errors_total 5.0" in metrics
    assert [r.status_code for r in back] == [200] * len(post_ids)


def test_lookups_answer_while_the_views_are_materializing(platform_copy) -> None:
    """Feast >= 0.64 refuses get_online_features for a view in state MATERIALIZING (feast
    issue 6780); the service reads below it from its own snapshot of the views."""
    from feast import FeatureStore
    from feast.feature_view import FeatureViewState

    from smp_platform.infra.feast_store import FeatureStoreGateway

    settings = platform_copy
    post_ids = _post_ids(settings, 10)
    with running_service(settings) as url:
        before = _lookups(url, post_ids)
        store = FeatureStoreGateway(settings).store
        service = store.get_feature_service(settings.feature_service)
        views = [
            store.registry.get_feature_view(p.name, store.project)
            for p in service.feature_view_projections
        ]
        for view in views:  # what FeatureStore.materialize does to each view before writing
            view.state = FeatureViewState.MATERIALIZING
            store.registry.apply_feature_view(view, store.project, commit=True)
        fresh = FeatureStore(config=FeatureStoreGateway(settings).repo_config())
        states = {
            p.name: fresh.registry.get_feature_view(p.name, fresh.project).state
            for p in service.feature_view_projections
        }
        with pytest.raises(ValueError, match="MATERIALIZING"):
            fresh.get_online_features(features=service, entity_rows=[{"post_id": post_ids[0]}])
        during = _lookups(url, post_ids)
        batch = httpx.post(
            f"{url}/v1/posts/popularity:batch", json={"post_ids": post_ids}, timeout=30
        )
    # a service that starts (and takes its snapshot) while the views are materializing
    with running_service(settings) as url:
        started_during = _lookups(url, post_ids)
        ready = httpx.get(f"{url}/readyz", timeout=30)
    assert set(states.values()) == {FeatureViewState.MATERIALIZING}
    assert [r.status_code for r in during] == [200] * len(post_ids)
    assert [r.json() for r in during] == [r.json() for r in before]
    assert batch.status_code == 200
    assert [e["popularity"] for e in batch.json()["predictions"]] == [
        r.json()["popularity"] for r in before
    ]
    assert [r.json() for r in started_during] == [r.json() for r in before]
    assert ready.status_code == 200


def test_sigterm_drains_and_exits_within_seconds(platform_copy) -> None:
    settings = platform_copy
    post_ids = _post_ids(settings, 50)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # A file, not a pipe read only at the end: the access log's line per request would fill it.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - read after the process exits
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from smp_platform.cli import main; main()",
            "--data-dir",
            str(settings.root),
            "serve",
            "--port",
            str(port),
            "--shutdown-seconds",
            "3",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def output() -> str:
        log.seek(0)
        return log.read().decode()

    codes: list[int] = []
    dropped: list[str] = []
    slow: dict[str, bytes] = {}
    stop = threading.Event()
    sent, signalled = threading.Event(), threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            for p in post_ids:
                try:  # a connection of its own each: an answer, or a refused connection
                    codes.append(
                        httpx.get(f"{url}/v1/posts/{p}/popularity", timeout=10).status_code
                    )
                except httpx.ConnectError:
                    return  # the listener has closed: expected once the drain began
                except httpx.ReadError as error:
                    if "Connection reset by peer" in str(error) and signalled.is_set():
                        # the kernel had completed the handshake, uvicorn had not accepted it
                        # yet: closing the listener resets what waits in its backlog. No byte
                        # of the request was read, so, like a refused connection, it is for
                        # the client to retry; a request the app took is the in-flight check
                        return
                    dropped.append(repr(error))
                    return
                except httpx.HTTPError as error:  # accepted, then never answered: dropped
                    dropped.append(repr(error))
                    return

    def in_flight() -> None:
        """A request whose head the server has read and whose body is still coming when
        SIGTERM arrives: under way, whatever the timing, so the drain must answer it."""
        body = json.dumps({"post_ids": post_ids}).encode()
        head = (
            "POST /v1/posts/popularity:batch HTTP/1.1\r\nHost: test\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head + body[:10])
            sent.set()
            signalled.wait(30)
            time.sleep(0.3)  # the server is shutting down by now
            sock.sendall(body[10:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        slow["response"] = answer

    try:
        assert _wait_for(lambda: _ready(url), 120), output()
        worker = threading.Thread(target=hammer)
        worker.start()
        time.sleep(1.0)
        long_one = threading.Thread(target=in_flight)
        long_one.start()
        assert sent.wait(30)
        time.sleep(0.3)  # the head is read and the app awaits the body
        proc.send_signal(signal.SIGTERM)
        signalled.set()
        started = time.monotonic()
        proc.wait(timeout=60)  # the drain is bounded (--shutdown-seconds 3): a hang fails here
        print(f"exited {time.monotonic() - started:.1f} s after SIGTERM")
        stop.set()
        worker.join(timeout=20)
        long_one.join(timeout=60)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
    printed = output()
    # uvicorn drains, runs the app's shutdown, then re-raises SIGTERM (exit status -15)
    assert proc.returncode in (0, -signal.SIGTERM), printed
    assert "Application shutdown complete" in printed, printed[-3000:]
    assert codes and set(codes) == {200}
    assert not dropped, dropped  # every request the server accepted was answered
    answer = slow.get("response", b"")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]  # the in-flight request, answered
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["predictions"][0]["post_id"] == post_ids[0]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
