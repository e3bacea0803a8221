"""bench/fixture.py once at a tiny size, so that it cannot rot unnoticed; and its place in
`python -m bench`."""

from __future__ import annotations

from bench import fixture
from bench.__main__ import BENCHMARKS


def test_the_fixture_benchmark_times_both_transports() -> None:
    report = fixture.run(fixture.SMOKE)
    rows = {row.label: row for row in report.rows}
    for label in ("setup + close", "create/reserve/accept round trip"):
        p50, p95 = rows[f"{label}, p50"], rows[f"{label}, p95"]
        assert 0 < p50.value <= p95.value
        assert 0 < p50.peer <= p95.peer
        assert p50.met is None, "targets are judged at full size only"
    assert report.title == "6. Fixture"


def test_python_m_bench_runs_it_by_name() -> None:
    assert "fixture" in BENCHMARKS
