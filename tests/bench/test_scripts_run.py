"""The benchmark scripts run to their last line (tiny sizes: this checks that they work, not speed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


def _run(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=BENCH.parent,
        env={**os.environ, "PYTHONPATH": f"{BENCH.parent}{os.pathsep}{BENCH}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


@pytest.mark.slow
def test_engine_overhead_prints_its_ratio_last() -> None:
    lines = _run(str(BENCH / "engine_overhead.py"), "3", "--rounds", "1")
    assert lines[-1].startswith("ratio (b)/(a): ")
    assert float(lines[-1].rpartition(" ")[2]) > 0


@pytest.mark.postgres
@pytest.mark.slow
def test_engine_overhead_on_postgresql_prints_both_figures(db_url: str) -> None:
    lines = _run(str(BENCH / "engine_overhead.py"), "3", "--rounds", "1", "--postgres", db_url)
    (by_cpu,) = [line for line in lines if line.startswith("(c) ")]
    (by_wall,) = [line for line in lines if "the same by wall-clock time" in line]
    (mixed,) = [line for line in lines if "over SpiffWorkflow's CPU time" in line]
    assert "ratio (c)/(a)" in by_cpu
    assert "steal meanwhile" in by_wall
    wall_rate, raw_wall_rate, ratio = (float(x) for x in re.findall(r"\d+\.\d+", by_wall)[:3])
    assert ratio == pytest.approx(wall_rate / raw_wall_rate, abs=0.001)
    assert float(mixed.rpartition(" ")[2]) > 0


@pytest.mark.slow
def test_evaluator_overhead_prints_its_ratio_last() -> None:
    lines = _run(str(BENCH / "evaluator_overhead.py"), "3", "--rounds", "1")
    assert lines[-1].startswith("ratio evaluators/in-process: ")
