"""The summary `make bench` prints: each bench records its headline figures (``record``) in
the file named by ``LIUDONG_BENCH_RESULTS`` (one JSON object per line; nothing is recorded
when it is unset, e.g. a bench run alone), and ``python -m bench.table FILE`` prints them as
one table: figure, baseline measured in the same run, measured value, ratio, goal, verdict.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RESULTS_ENV = "LIUDONG_BENCH_RESULTS"
COLUMNS = ("figure", "baseline, same run", "measured", "ratio", "goal", "verdict")


def record(figure: str, baseline: str, measured: str, ratio: str, goal: str, verdict: str) -> None:
    target = os.environ.get(RESULTS_ENV)
    if not target:
        return
    row = dict(zip(COLUMNS, (figure, baseline, measured, ratio, goal, verdict), strict=True))
    with Path(target).open("a", encoding="utf-8") as out:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def render(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(row.get(c, "") for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(os.environ.get(RESULTS_ENV, ""))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if path.is_file() else []
    print("\nliudong benchmarks (this machine, this run)\n")
    print(render(rows) if rows else "no figures were recorded")


if __name__ == "__main__":
    main()
