"""The benches with tiny sizes, so their code does not rot between `make bench` runs; the
figures they print here mean nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module, args", [
    ("bench.concurrency", ["--n", "64", "--clients", "1,4"]),
    ("bench.queries", ["--residents", "300", "--readers", "2", "--requests", "5", "--seconds", "1"]),
    ("bench.audit", ["--residents", "40"]),
])
def test_a_bench_runs_with_tiny_sizes(module: str, args: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x raw" in result.stdout or "p99" in result.stdout, result.stdout
