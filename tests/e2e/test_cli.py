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
