"""The benches with tiny sizes, so their code does not rot between `make bench` runs; the
figures they print here mean nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module, args", [
    ("bench.concurrency", ["--n", "64", "--clients", "1,4"]),
    ("bench.queries", ["--residents", "300", "--readers", "2", "--requests", "5", "--seconds", "1"]),
    ("bench.audit", ["--residents", "40"]),
    ("bench.erasure", ["--residents", "30", "--meetings", "10", "--erasures", "3"]),
    ("bench.district", ["--residents", "400"]),
    ("bench.backbone", ["--rate", "20", "--seconds", "1", "--relay-events", "200", "--workers", "1"]),
    pytest.param("bench.http", ["--clients", "4", "--seconds", "1"],
                 marks=pytest.mark.skipif(shutil.which("wrk") is None, reason="bench.http loads with wrk")),
])
def test_a_bench_runs_with_tiny_sizes(module: str, args: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x raw" in result.stdout or "p99" in result.stdout or "goal" in result.stdout, result.stdout


def test_the_summary_table_shows_what_the_benches_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from bench.table import RESULTS_ENV, main, record

    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(RESULTS_ENV, str(results))
    record("sequential commands, application layer", "raw 5,000/s", "2,600 commands/s", "0.52x", ">= 0.5x", "met")
    record("list queries p99", "none", "worst route p99 31.0 ms", "", "<= 20 ms", "not met")
    main([str(results)])
    table = capsys.readouterr().out.splitlines()
    assert "| figure | baseline, same run | measured | ratio | goal | verdict |" in table
    assert "| sequential commands, application layer | raw 5,000/s | 2,600 commands/s | 0.52x | >= 0.5x | met |" \
        in table
    assert "| list queries p99 | none | worst route p99 31.0 ms |  | <= 20 ms | not met |" in table
