"""The CLI as a user scripts it: real subprocesses, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_subset

pytestmark = pytest.mark.e2e

SMP = [sys.executable, "-m", "smp_platform.cli"]


def _smp(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SMP, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=600
    )


def test_help_answers_without_importing_heavy_packages() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from smp_platform.cli import main\n"  # the console script's entry point
        "sys.argv = ['smp', '--help']\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "assert 'refresh' in out.getvalue() and 'serve' in out.getvalue(), out.getvalue()\n"
        "heavy = [m for m in ('torch', 'feast', 'mlflow', 'prefect', 'catboost', 'transformers',"
        " 'pandas') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_ingest_of_a_missing_directory_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = _smp(
        "ingest", "--format", "smp-video", str(tmp_path / "nope"), data_dir=tmp_path / "d"
    )
    assert result.returncode == 2
    assert "nope" in result.stderr and "error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_sets_bad_rows_aside_and_loads_the_rest(tmp_path: Path) -> None:
    data = write_subset("train", tmp_path / "in", n=30)
    posts = next(data.glob("*posts*"))
    lines = posts.read_text().splitlines()
    broken = json.loads(lines[0])
    broken["post_time"] = "not a time"
    lines[0] = json.dumps(broken)
    lines.append("{this is not json")
    posts.write_text("\n".join(lines) + "\n")
    first = _smp("ingest", "--format", "smp-video", str(data), data_dir=tmp_path / "d")
    assert first.returncode == 0, first.stderr
    # The post with a bad time is set aside, and so are its label and video rows.
    assert "29 loaded" in first.stdout and "4 quarantined" in first.stdout
    assert "1 bad time" in first.stdout and "1 bad JSON" in first.stdout
    assert "2 unknown post" in first.stdout
    again = _smp("ingest", "--format", "smp-video", str(data), data_dir=tmp_path / "d")
    assert again.returncode == 0
    assert "0 new" in again.stdout and "29 unchanged" in again.stdout
    code = (
        "from smp_platform.infra.warehouse import Warehouse\n"
        "from pathlib import Path\n"
        f"w = Warehouse(Path(r'{tmp_path / 'd' / 'warehouse.duckdb'}'), read_only=True)\n"
        "q = w.quarantine_frame(); print(len(q)); print('|'.join(sorted(q['reason'])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    count, reasons = out.stdout.strip().splitlines()
    assert count == "4"  # re-loading added no quarantine rows
    assert "bad JSON" in reasons and "bad time" in reasons


def test_predict_without_a_champion_exits_2(tmp_path: Path) -> None:
    data = write_subset("unlabeled", tmp_path / "in", n=5, with_labels=False)
    result = _smp(
        "predict",
        "--format",
        "smp-video",
        "--input",
        str(data),
        "--output",
        str(tmp_path / "out.csv"),
        data_dir=tmp_path / "d",
    )
    assert result.returncode == 2, result.stderr
    assert "champion" in result.stderr


def test_the_cli_success_paths_end_to_end(tmp_path: Path, prefect_server: None) -> None:
    """What a user scripts, each through the real CLI in its own process: ingest, refresh,
    train, promote, predict, evaluate, tune, report, score and serve --workers 2 (tabular
    features and a fast recipe, so the chain takes a few minutes)."""
    import os
    import signal
    import socket
    import time

    import httpx
    from prefect.settings import PREFECT_API_URL

    train = write_subset("train", tmp_path / "train", n=160)
    unseen = write_subset("unlabeled", tmp_path / "unseen", n=10, with_labels=False)
    data_dir = tmp_path / "d"
    env = dict(
        os.environ,
        SMP_ENCODERS__TEXT_MODEL="",
        SMP_ENCODERS__PERPLEXITY_MODEL="",
        SMP_FEATURE_SERVICE="popularity_tabular_v1",
        SMP_TRAIN__ITERATIONS="80",
        SMP_TRAIN__SEEDS="1",
        # the session's Prefect server, as a deployed platform has one: each command's flow
        # would otherwise start a temporary server of its own (~5 s each)
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
    )

    def smp(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*SMP, "--data-dir", str(data_dir), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
        return done

    assert "160 loaded" in smp("ingest", str(train)).stdout
    assert "feature rows written" in smp("refresh").stdout
    assert "nothing to do" in smp("refresh").stdout
    trained = smp("train").stdout
    assert "train: version 1 fitted on all" in trained and "backtest" in trained
    assert "promoted to @champion" in smp("promote").stdout
    out = tmp_path / "predictions.csv"
    assert "10 posts" in smp("predict", "--input", str(unseen), "--output", str(out)).stdout
    predicted = out.read_text().splitlines()
    assert predicted[0] == "post_id,popularity" and len(predicted) == 11
    evaluated = smp("evaluate").stdout
    assert "median baseline" in evaluated and "tabular" in evaluated
    tuned = smp("tune", "--trials", "2").stdout
    assert "best of 2 trial(s)" in tuned and (data_dir / "recipe.json").is_file()
    reported = smp("report").stdout
    assert "feature_importance.png" in reported
    draft = tmp_path / "draft.json"
    first = json.loads(next(train.glob("*posts*")).read_text().splitlines()[0])
    draft.write_text(json.dumps({"format": "smp-video", "post": {**first, "pid": "DRAFT_1"}}))
    scored = json.loads(smp("score", "--input", str(draft), "--explain").stdout)
    assert scored["model_version"] == "1" and scored["contributions"]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [*SMP, "--data-dir", str(data_dir), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        ready = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, server.stderr
        post_id = predicted[1].split(",")[0]
        answers = [httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30) for _ in range(8)]
        assert {a.status_code for a in answers} == {200}
        expected = float(predicted[1].split(",")[1])
        assert abs(answers[0].json()["popularity"] - expected) < 1e-6  # online == batch
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_the_demo_end_to_end_on_a_small_slice(tmp_path: Path) -> None:
    """``make demo``'s command on a reduced sample (tabular features, a fast recipe): every
    step, the printed metrics and an online prediction."""
    import os

    train = write_subset("train", tmp_path / "train", n=160)
    env = dict(
        os.environ,
        SMP_ENCODERS__TEXT_MODEL="",
        SMP_ENCODERS__PERPLEXITY_MODEL="",
        SMP_FEATURE_SERVICE="popularity_tabular_v1",
        SMP_TRAIN__ITERATIONS="80",
        SMP_TRAIN__SEEDS="1",
    )
    done = subprocess.run(
        [*SMP, "--data-dir", str(tmp_path / "d"), "demo", "--data", str(train), "--no-ablation"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for step in (
        "1/7 ingest",
        "2/7 refresh",
        "3/7 train",
        "4/7 promote",
        "6/7 report",
        "7/7 online",
    ):
        assert step in out, out
    assert "promoted to @champion" in out
    assert "-> 200" in out and "validation (latest posts)" in out and "SRC " in out
