"""`perfgym benchmark`: the grader's own overhead and stability, as ratios of one run."""

from __future__ import annotations

import json
import statistics

import pytest

from perfgym import benchmark
from perfgym.grading.measure import run_seeds
from perfgym.tasks import get_task


@pytest.mark.slow
def test_benchmark_reports_its_ratios_and_keeps_every_gradings_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--task", "numpy-rf", "--size", "small", "--gradings", "2", "--json", str(out)]
    code = benchmark.main(argv)
    (result,) = json.loads(out.read_text())
    ok = (
        result["overhead_ratio"] <= 1.0
        and result["spread"] <= 1.15
        and result["speedup_ratio"] >= 1.0
    )
    assert code == (0 if ok else 1)
    assert len(result["grading_s"]) == len(result["speedups"]) == len(result["timings"]) == 2
    assert result["spread"] == max(result["speedups"]) / min(result["speedups"])
    own = result["own_runtimes_s"]
    assert len(own) == 2 and result["own_runtime_s"] == statistics.median(own)
    ratios = [t / (3 * o + 5) for t, o in zip(result["grading_s"], own, strict=True)]
    assert result["overhead_ratio"] == pytest.approx(statistics.median(ratios))
    runs = set(run_seeds(get_task("numpy-rf"), "small"))
    for timing, speedup in zip(result["timings"], result["speedups"], strict=True):
        assert timing["speedup"] == speedup
        assert set(timing["candidate"]["samples"]) == set(timing["candidate"]["reference_samples"])
        assert set(timing["candidate"]["samples"]) == runs
    table = capsys.readouterr().out
    assert "numpy-rf" in table and ("yes" if ok else "NO") in table
