"""The benchmarks still run: ``python -m benchmarks --quick`` produces its table.

A smoke run only, so that the benchmarks cannot rot unnoticed: small sizes, one
round, a few seconds. It asserts nothing about speed (the figures of a quick run on
a shared CI machine mean nothing), only that every section ran and the table,
samples and Markdown were written. supervisord, circus, escript, a C compiler and
matplotlib are all optional: the run prints why it skips what it cannot do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("1 crash detection", "2 crash→restart", "3 in-process restarts", "4 scale",
            "5 idle cost", "6 core decisions")


def test_quick_run_produces_the_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-install", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "otp_py median" in done.stdout
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"| {section} |" in markdown, f"no {section!r} rows in the table"
    samples = json.loads((tmp_path / "samples.json").read_text(encoding="utf-8"))
    assert samples["meta"]["quick"] is True
    measured = [s for s in samples["series"].values() if s["n"]]
    assert measured, "no series has any sample"
    assert (tmp_path / "results.rst.inc").read_text(encoding="utf-8").count("* -") > 1
