"""`smp ui`: Feast's web UI over a data dir, started as a user would (a subprocess on a free
port of 127.0.0.1), asked for its page and its registry API, then stopped with SIGTERM."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from smp_platform.core.config import Settings

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 180  # importing Feast and its UI server takes ~20 s on a quiet 2-core machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get_when_up(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"smp ui exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            time.sleep(1)
    pytest.fail(f"smp ui did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


def test_smp_ui_serves_the_views_and_services_with_descriptions_and_tags(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # a fresh data dir: `smp ui` renders and applies it
    settings = Settings(data_dir=data_dir)
    port = _free_port()
    log = tmp_path / "ui.log"
    smp = Path(sys.executable).with_name("smp")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(smp), "--data-dir", str(data_dir), "ui", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        api = f"http://127.0.0.1:{port}/api/v1"
        project = f"?project={settings.feast_project}"
        views = _get_when_up(f"{api}/feature_views{project}", process, log)
        assert views.status_code == 200, views.text
        specs = {v["spec"]["name"]: v["spec"] for v in views.json()["featureViews"]}
        assert "post_temporal" in specs
        for name, spec in specs.items():
            assert spec.get("description"), name
            tags = spec["tags"]
            assert tags["group"] and tags["reads"] and tags["computed"], name
            assert "popularity_all_v1" in tags["services"].split(","), name
        assert specs["post_temporal"]["tags"]["group"] == "tabular"

        services = httpx.get(f"{api}/feature_services{project}", timeout=10)
        assert services.status_code == 200
        by_name = {s["spec"]["name"]: s["spec"] for s in services.json()["featureServices"]}
        default = by_name[settings.feature_service]
        assert "tabular" in default["tags"]["groups"].split(",")
        assert "post_temporal" in default["tags"]["views"].split(",")
        assert "features in" in default["description"]

        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        process.terminate()
        returncode = process.wait(timeout=30)
    # SIGTERM reached the server itself (smp became `feast ui`): it stopped, nothing is left
    assert returncode in (0, -15), log.read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    printed = log.read_text()
    assert f"http://127.0.0.1:{port}/" in printed.splitlines()[0]
    assert "FastAPIDeprecationWarning" not in printed
