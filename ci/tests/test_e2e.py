import argparse

import e2e
from e2e import PhaseTimer

from e2elib.stack import PhaseFailure


def test_month_range_and_days():
    assert e2e.month_range("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert e2e.days_in(["2023-01", "2023-02"]) == 59
    assert e2e.days_in(["2024-02"]) == 29


def test_e2e_env_uses_sample_data_free_ports_and_loopback(monkeypatch):
    monkeypatch.setenv("PYTHON_BASE_IMAGE", "airgap/python:3.11-slim")
    args = argparse.Namespace(
        trips_per_month=100, start_month="2023-01", end_month="2023-02", tag="abc"
    )
    example = "DAGSTER_WEBSERVER_PORT=3000\nSUPERSET_PORT=8088\nSUPERSET_BIND=0.0.0.0\n"
    env = e2e.e2e_env(args, example)
    assert env["TAXI_DATA_SOURCE"] == "sample"
    assert env["TAXI_IMAGE_TAG"] == "abc"
    assert env["PYTHON_BASE_IMAGE"] == "airgap/python:3.11-slim"
    assert env["SUPERSET_BIND"] == "127.0.0.1"
    assert env["DAGSTER_WEBSERVER_PORT"] not in ("3000", env["SUPERSET_PORT"])


def test_read_env_file(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# c\nA=1\n\nB=two=2\n")
    assert e2e.read_env_file(path) == {"A": "1", "B": "two=2"}


def test_phases_are_named_functions_in_order():
    names = [name for name, _ in e2e.PHASES]
    assert names[0] == "build images" and names[1] == "compose up -> healthy"
    assert len(set(names)) == len(names)
    assert all(fn.__name__.startswith("phase_") for _, fn in e2e.PHASES)


def test_timer_records_failures_and_totals():
    ticks = iter([0.0, 1.5, 2.0, 5.0])
    timer = PhaseTimer(clock=lambda: next(ticks))
    with timer.phase("one"):
        pass
    try:
        with timer.phase("two"):
            raise PhaseFailure("no", ["daemon"])
    except PhaseFailure as failure:
        assert failure.services == ("daemon",)
    assert timer.results == [("one", 1.5, "ok"), ("two", 3.0, "failed")]
    assert timer.table().splitlines()[-1].split() == ["total", "4.5"]


def test_chart_loop_counts_failed_queries_per_window():
    from superset_checks import ChartLoop, ChartQuery

    loop = ChartLoop("http://127.0.0.1:1", "admin", "x")
    loop.queries = [
        ChartQuery(1.0, 0.1, None),
        ChartQuery(2.0, 0.3, "HTTP 500"),
        ChartQuery(3.0, 0.2, None),
    ]
    everything = loop.stats()
    assert (everything["requests"], everything["errors"]) == (3, 1)
    assert everything["failures"] == ["1 of 3 chart queries failed"]
    assert everything["latency_ms"] == {"median": 200, "p95": 300, "max": 300}
    assert loop.stats(2.5)["failures"] == [] and loop.stats(2.5)["requests"] == 1
    assert loop.stats(10.0)["failures"] == ["no chart query was made"]
